from typing import Any

from django.db import models

class TenantMixin(models.Model):
    schema_name: models.CharField[str, str]
    auto_create_schema: bool
    auto_drop_schema: bool
    domain_url: str
    def save(self, verbosity: int = ..., *args: Any, **kwargs: Any) -> None: ...
    def delete(  # type: ignore[override]
        self, force_drop: bool = ..., *args: Any, **kwargs: Any
    ) -> tuple[int, dict[str, int]]: ...
    def create_schema(self, check_if_exists: bool = ..., sync_schema: bool = ..., verbosity: int = ...) -> bool: ...

class DomainMixin(models.Model):
    domain: models.CharField[str, str]
    tenant: models.ForeignKey[Any, Any]
    tenant_id: Any
    is_primary: models.BooleanField[bool, bool]
