"""Dependencies of the matching routes beyond the kernel's: the service's own settings (TTL, quota)."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends

from services.matching.settings import MatchingSettings
from tsunagu.deps import RuntimeDep


def get_settings(runtime: RuntimeDep) -> MatchingSettings:
    return cast(MatchingSettings, runtime.settings)


SettingsDep = Annotated[MatchingSettings, Depends(get_settings)]
