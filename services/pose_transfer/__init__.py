"""Pose service (port 8083): 18-keypoint pose estimation. Pose transfer itself is not built yet (issue 7)."""
