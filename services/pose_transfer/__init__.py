"""Pose and pose-transfer service (port 8083): 18-keypoint pose estimation and ADGAN-style pose transfer."""
