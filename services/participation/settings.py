"""participation.yaml (points, catalogue, reviews, frontage) and the shops register
(shared/refdata/default_district/shops.yaml) — read once, validated."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import yaml
from marshmallow import ValidationError

from shared.config import ROOT

from .schemas import SettingsSchema, ShopSchema

DEFAULT_PATH = Path(__file__).with_name("participation.yaml")
SHOPS_PATH = ROOT / "shared" / "refdata" / "default_district" / "shops.yaml"


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle) or {}
    try:
        return SettingsSchema().load(raw)
    except ValidationError as exc:
        raise ValueError(f"{path}: {exc.messages}") from None


def load_settings(path: str | None = None) -> dict:
    return _load(str(path or os.environ.get("PARTICIPATION_CONFIG") or DEFAULT_PATH))


@lru_cache(maxsize=4)
def _shops(path: str) -> tuple:
    if not Path(path).exists():
        return ()
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle) or {}
    try:
        return tuple(ShopSchema(many=True).load(raw.get("shops") or []))
    except ValidationError as exc:
        raise ValueError(f"{path}: {exc.messages}") from None


def default_shops(path: str | None = None) -> list[dict]:
    return [dict(shop) for shop in _shops(str(path or os.environ.get("SHOPS_FILE") or SHOPS_PATH))]
