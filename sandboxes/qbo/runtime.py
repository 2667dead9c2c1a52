"""Settings that the control API may change while the sandbox runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandboxes.qbo.settings import SandboxSettings

AGGREGATION_CHOICES = (0.2, 60.0, 180.0, 300.0)


@dataclass
class RuntimeConfig:
    webhook_url: str | None
    webhook_format: str
    aggregation_seconds: float
    rate_limits: bool
    # Intuit may send CloudEvents as either type; the stricter one is the default.
    ce_content_type: str = "application/cloudevents+json"

    @classmethod
    def from_settings(cls, settings: SandboxSettings) -> RuntimeConfig:
        return cls(
            webhook_url=settings.qbo_sandbox_webhook_url,
            webhook_format=settings.qbo_sandbox_webhook_format,
            aggregation_seconds=settings.qbo_sandbox_aggregation_seconds,
            rate_limits=settings.qbo_sandbox_rate_limits,
        )

    def as_dict(self, time_scale: float) -> dict[str, Any]:
        return {
            "webhookUrl": self.webhook_url,
            "webhookFormat": self.webhook_format,
            "aggregationSeconds": self.aggregation_seconds,
            "rateLimits": self.rate_limits,
            "ceContentType": self.ce_content_type,
            "timeScale": time_scale,
        }
