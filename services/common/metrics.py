"""Prometheus metrics shared by every service (served at GET /metrics)."""

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "route", "method", "status"])
REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["service", "route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30),
)
STAGE_SECONDS = Histogram(
    "request_stage_duration_seconds",
    "Time per processing stage",
    ["service", "stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 5),
)
INFER_SECONDS = Histogram(
    "triton_infer_duration_seconds",
    "Triton inference round trip",
    ["model"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 30),
)
TRITON_ERRORS = Counter("triton_errors_total", "Failed Triton calls", ["model", "kind"])
INFLIGHT = Gauge("http_requests_inflight", "Requests being processed", ["service"])
REJECTED = Counter("http_requests_rejected_total", "Requests refused because the service was saturated", ["service"])
TRITON_CALLS = Counter(
    "triton_calls_total", "Triton calls answered, by how their tensors travelled", ["model", "tensors"]
)  # tensors: shared_memory, or messages (TRITON_SHARED_MEMORY off, or Triton cannot open the regions)
SHARED_MEMORY_BYTES = Gauge("triton_shared_memory_bytes", "Bytes of /dev/shm regions this process holds for Triton")
