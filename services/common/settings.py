"""Configuration from the environment (pydantic-settings); one place for every knob."""

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fashionpixel.quality import TASKS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    triton_grpc_url: str = Field("localhost:8001", description="host:port of Triton's gRPC endpoint")
    infer_timeout_s: float = Field(30.0, gt=0, description="deadline of one inference call (→ 504)")
    ready_timeout_s: float = Field(2.0, gt=0, description="deadline of Triton readiness checks")
    triton_retries: int = Field(2, ge=0, description="retries of an inference when Triton is UNAVAILABLE")
    triton_shared_memory: bool = Field(
        True,
        description="pass tensors to Triton through system shared memory (/dev/shm) instead of inside the gRPC "
        "messages; needs Triton on this host (in Docker: the same IPC namespace); a Triton that cannot open "
        "the regions is noticed on the first call and the messages carry the tensors again",
    )
    max_upload_bytes: int = Field(20 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(40_000_000, gt=0)
    min_image_side: int = Field(16, gt=0, description="smaller images are refused with 422")
    max_inflight: int = Field(16, gt=0, description="requests in progress beyond which we answer 503")
    cpu_workers: int = Field(2, gt=0, description="threads for decode / post-processing / encode")
    idle_trim_s: float = Field(
        2.0,
        ge=0,
        description="after this long without requests, hand freed heap "
        "memory back to the OS (glibc malloc_trim); 0 = never",
    )
    keep_freed_memory: bool = Field(
        True,
        description="while busy, keep freed heap memory for the next request instead of paying page faults "
        "for it again (glibc mallopt); it goes back once idle (IDLE_TRIM_S, which must not be 0)",
    )
    pose_ahead_when_idle: bool = Field(
        False,
        description="segmentation: while no other request is in progress, the pose network's look at the whole "
        "photo is asked beside the first network pass, not after it (the same answer, sooner, when the look is "
        "needed; never while busy). Off since the segmentation network's routing head decides most photos "
        "itself, which left the look unused on most (docs/tuning.md)",
    )
    retry_after_s: int = Field(2, ge=0)
    api_keys: str = Field("", description="comma-separated; when set, /v1/* needs X-API-Key")
    cors_origins: str = Field("", description="comma-separated allowed origins; empty = CORS closed")
    demo_cutout_url: str = Field(
        "", description="where the /demo page finds the cutout service (empty = its host, port 8081)"
    )
    demo_skin_url: str = Field("", description="... the skin-generation service (empty = its host, port 8082)")
    demo_pose_transfer_url: str = Field("", description="... the pose-transfer service (empty = its host, port 8083)")
    log_level: str = Field("INFO", description="one line per request: method, route, status, ms, request id")
    review_threshold: str = Field(
        "",
        description="X-Needs-Review is true when a result's quality is below this: one number for every task, "
        "or task=number pairs (person, fashion, cutout, pose; e.g. person=0.92,pose=0.7); empty = the "
        "thresholds chosen on validation photos (fashionpixel/quality_coefficients.json)",
    )

    @field_validator("review_threshold")
    @classmethod
    def _thresholds_parse(cls, value: str) -> str:
        review_thresholds(value)
        return value

    @property
    def api_key_set(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())

    @property
    def review_thresholds(self) -> dict[str, float]:
        return review_thresholds(self.review_threshold)

    @property
    def max_body_bytes(self) -> int:
        # Room for two image fields (skin generation takes a photo and a mask) plus form overhead.
        return 2 * self.max_upload_bytes + 1024 * 1024


@lru_cache
def review_thresholds(text: str) -> dict[str, float]:
    """REVIEW_THRESHOLD as {task: threshold}; a lone number is every task's ("*"). Cached: every answer
    reads it (do not change the dict)."""
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        task, _, value = item.rpartition("=")
        task, threshold = task.strip() or "*", float(value)
        if task not in ("*", *TASKS):
            raise ValueError(f"REVIEW_THRESHOLD: unknown task {task!r}; known: {', '.join(TASKS)}")
        if not 0 <= threshold <= 1:
            raise ValueError(f"REVIEW_THRESHOLD: {threshold} is not in [0, 1]")
        out[task] = threshold
    return out


@lru_cache
def get_settings() -> Settings:
    return Settings()


async def current_settings() -> Settings:
    """get_settings as a FastAPI dependency. A coroutine runs on the event loop; a plain function's
    dependency FastAPI runs on a worker thread, a thread hop per request for a cached value."""
    return get_settings()
