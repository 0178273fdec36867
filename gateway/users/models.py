from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field

from tsunagu.db import service_base, utcnow

GatewayModel = service_base("gateway")


class User(GatewayModel, table=True):
    __tablename__ = "users"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    email: str = Field(max_length=254, unique=True, index=True)
    password_hash: str = Field(max_length=200)
    display_name: str = Field(max_length=100)
    role: str = Field(max_length=20)
    # A broker's or hub's prefectures (JIS codes); empty for everyone else.
    prefectures: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
