"""The model catalogue: hosts, curated models with genai-prices rates, and user price overrides."""

from shoal.catalogue.catalogue import (
    BUNDLED_SNAPSHOT_DATE,
    CatalogueEntry,
    PriceData,
    build_catalogue,
    bundled_price_data,
)
from shoal.catalogue.curated import CURATED_MODELS, CuratedModel
from shoal.catalogue.hosts import HOSTS, KNOWN_PROVIDERS, Host
from shoal.catalogue.prices_file import PRICES_ENV, load_prices_file, user_price

__all__ = [
    "BUNDLED_SNAPSHOT_DATE",
    "CURATED_MODELS",
    "HOSTS",
    "KNOWN_PROVIDERS",
    "PRICES_ENV",
    "CatalogueEntry",
    "CuratedModel",
    "Host",
    "PriceData",
    "build_catalogue",
    "bundled_price_data",
    "load_prices_file",
    "user_price",
]
