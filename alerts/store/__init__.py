"""The alert store (SQLAlchemy 2 + Alembic)."""

from alerts.store.publishing import Publisher
from alerts.store.store import DeliveryOutcome, NewDelivery, Store, StoreError

__all__ = ["DeliveryOutcome", "NewDelivery", "Publisher", "Store", "StoreError"]
