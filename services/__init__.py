"""The HTTP microservices. `services.common` is what they share; each other folder is one service."""

import os

# OpenCV's worker threads spin for a while after each parallel job before they sleep (its pthreads pool:
# 2000 iterations a worker, 10000 the caller). On two cores shared with Triton that spinning is CPU taken
# from the networks: asleep at once, a cutout request costs the service 1.8 ms less CPU (13 %) and 8
# clients get 3-4 % more answers a second, while a 3000×4500 photo still has both threads (its p50
# unchanged; docs/benchmarks.md, 2026-12-02 evening). Read once, when cv2 is first imported: so here,
# before any service module imports it. An operator's own value wins.
os.environ.setdefault("OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER", "0")
os.environ.setdefault("OPENCV_THREAD_POOL_ACTIVE_WAIT_MAIN", "0")
