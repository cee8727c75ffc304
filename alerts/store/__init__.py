"""The alert store (SQLAlchemy 2 + Alembic)."""

from alerts.store.publishing import Publisher
from alerts.store.store import (
    Claim,
    DeliveryOutcome,
    DueGroup,
    NewDelivery,
    NewMessage,
    Store,
    StoreError,
)

__all__ = [
    "Claim",
    "DeliveryOutcome",
    "DueGroup",
    "NewDelivery",
    "NewMessage",
    "Publisher",
    "Store",
    "StoreError",
]
