"""Every query of the profiles service, in one place (the routes, the service logic, the freshness job,
the import and the export hold no SQL)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from services.profiles.models import (
    CorrectionRequest,
    Expert,
    Organization,
    OrganizationInvitation,
    OrganizationMember,
    RegistrationClaim,
)
from services.profiles.settings import MIGRATIONS_DIR, SERVICE_NAME, ProfilesSettings
from tsunagu.db import make_engine
from tsunagu.migrations import upgrade


def prepared_engine(settings: ProfilesSettings) -> Engine:
    """An engine on the service's database with the schema migrated (for the CLI's one-shot commands)."""
    url = settings.database_url_for(SERVICE_NAME)
    upgrade(MIGRATIONS_DIR, url)
    return make_engine(url)


# --- experts -----------------------------------------------------------------------------------


def get_expert(session: Session, expert_id: str, *, for_update: bool = False) -> Expert | None:
    statement = select(Expert).where(Expert.id == expert_id)
    if for_update:
        statement = statement.with_for_update()  # PostgreSQL row lock; SQLite serialises writers anyway
    return session.exec(statement).first()


def expert_by_owner(session: Session, user_id: str) -> Expert | None:
    return session.exec(select(Expert).where(Expert.owner_user_id == user_id)).first()


def expert_by_registration_number(session: Session, number: str) -> Expert | None:
    return session.exec(select(Expert).where(Expert.registration_number == number)).first()


def expert_by_external_id(session: Session, external_id: str) -> Expert | None:
    return session.exec(select(Expert).where(Expert.external_id == external_id)).first()


def experts_by_keys(
    session: Session, *, ids: Iterable[str], registration_numbers: Iterable[str], external_ids: Iterable[str]
) -> list[Expert]:
    """The entries a batch of import rows refers to, in one query."""
    ids, numbers, externals = list(ids), list(registration_numbers), list(external_ids)
    conditions = []
    if ids:
        conditions.append(col(Expert.id).in_(ids))
    if numbers:
        conditions.append(col(Expert.registration_number).in_(numbers))
    if externals:
        conditions.append(col(Expert.external_id).in_(externals))
    if not conditions:
        return []
    return list(session.exec(select(Expert).where(or_(*conditions))).all())


def experts_by_owners(session: Session, user_ids: Iterable[str]) -> list[Expert]:
    user_ids = list(user_ids)
    if not user_ids:
        return []
    return list(session.exec(select(Expert).where(col(Expert.owner_user_id).in_(user_ids))).all())


def experts_after(session: Session, last_id: str, limit: int) -> list[Expert]:
    """The next batch of entries by id, locked for change (the freshness job walks the list this way)."""
    statement = select(Expert).where(col(Expert.id) > last_id).order_by(col(Expert.id)).limit(limit)
    return list(session.exec(statement.with_for_update()).all())


def insert_experts(session: Session, rows: list[dict[str, Any]]) -> None:
    """New entries as one bulk INSERT of column values (the import: an ORM object per row would cost more
    than everything else together)."""
    if rows:
        session.connection().execute(Expert.__table__.insert(), rows)  # type: ignore[attr-defined]


@dataclass
class ExpertFilter:
    kind: str | None = None
    active: bool | None = None
    prefecture: str | None = None
    topic: str | None = None
    skill: str | None = None
    service: str | None = None
    status_reason: str | None = None
    confirmed_before: datetime | None = None
    name: str | None = None
    verification: str | None = None


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def expert_query(where: ExpertFilter) -> Select:
    """Entries that may match, newest change first. The tag filters are a superset for callers whose
    view of a field depends on the entry: service.list_experts checks those rows one by one."""
    statement = select(Expert)
    if where.kind:
        statement = statement.where(Expert.kind == where.kind)
    if where.active is not None:
        statement = statement.where(Expert.active == where.active)
    if where.status_reason:
        statement = statement.where(Expert.status_reason == where.status_reason)
    if where.verification:
        statement = statement.where(Expert.verification == where.verification)
    if where.confirmed_before is not None:
        statement = statement.where(
            or_(col(Expert.last_confirmed_at).is_(None), col(Expert.last_confirmed_at) < where.confirmed_before)
        )
    for column, value in (
        (Expert.prefecture_tags, where.prefecture),
        (Expert.topic_tags, where.topic),
        (Expert.skill_tags, where.skill),
        (Expert.service_tags, where.service),
    ):
        if value:
            statement = statement.where(col(column).like(f"%|{_escape_like(value)}|%", escape="\\"))
    if where.name:
        statement = statement.where(col(Expert.name).like(f"%{_escape_like(where.name)}%", escape="\\"))
    return statement.order_by(col(Expert.updated_at).desc(), col(Expert.id))


def page(session: Session, statement: Select, *, limit: int, offset: int) -> tuple[list[Expert], int]:
    total = session.exec(select(func.count()).select_from(statement.order_by(None).subquery())).one()
    return list(session.exec(statement.offset(offset).limit(limit)).all()), total


def stream(session: Session, statement: Select) -> Iterator[Expert]:
    yield from session.exec(statement.execution_options(yield_per=500))


def all_experts(session: Session) -> Iterator[Expert]:
    """Every listed (verified) entry in a stable order, streamed (the export never holds the whole list).
    Pending claims are not on the list yet: an export re-imported must not verify them."""
    yield from session.exec(
        select(Expert)
        .where(Expert.verification == "verified")
        .order_by(col(Expert.kind).desc(), col(Expert.registration_number), col(Expert.id))
        .execution_options(yield_per=500)
    )


def count_experts(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Expert)).one()


# --- organisations -----------------------------------------------------------------------------


def get_organization(session: Session, organization_id: str, *, for_update: bool = False) -> Organization | None:
    statement = select(Organization).where(Organization.id == organization_id)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def member_ids(session: Session, organization_id: str) -> list[str]:
    return sorted(
        session.exec(
            select(OrganizationMember.user_id).where(OrganizationMember.organization_id == organization_id)
        ).all()
    )


def members_of(session: Session, organization_ids: list[str]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {organization_id: [] for organization_id in organization_ids}
    if organization_ids:
        rows = session.exec(
            select(OrganizationMember.organization_id, OrganizationMember.user_id).where(
                col(OrganizationMember.organization_id).in_(organization_ids)
            )
        ).all()
        for organization_id, user_id in rows:
            result[organization_id].append(user_id)
    return {key: sorted(value) for key, value in result.items()}


def is_member(session: Session, organization_id: str, user_id: str) -> bool:
    return session.get(OrganizationMember, (organization_id, user_id)) is not None


def add_member(session: Session, organization_id: str, user_id: str) -> bool:
    """True when the user was not a member yet."""
    if is_member(session, organization_id, user_id):
        return False
    session.add(OrganizationMember(organization_id=organization_id, user_id=user_id))
    return True


def remove_member(session: Session, organization_id: str, user_id: str) -> bool:
    member = session.get(OrganizationMember, (organization_id, user_id))
    if member is None:
        return False
    session.delete(member)
    return True


def list_organizations(
    session: Session,
    *,
    member: str | None = None,
    prefectures: list[str] | None = None,
    limit: int,
    offset: int,
) -> tuple[list[Organization], int]:
    """Organisations a user acts for, or those in some prefectures, or (neither given) all of them."""
    statement = select(Organization)
    if member is not None:
        statement = statement.join(OrganizationMember, OrganizationMember.organization_id == Organization.id).where(
            OrganizationMember.user_id == member
        )
    if prefectures is not None:
        statement = statement.where(col(Organization.prefecture).in_(prefectures))
    total = session.exec(select(func.count()).select_from(statement.subquery())).one()
    rows = session.exec(
        statement.order_by(col(Organization.name), col(Organization.id)).offset(offset).limit(limit)
    ).all()
    return list(rows), total


# --- trust (issue 9): contested claims, corrections, invitations ---------------------------------


def _paged(session: Session, statement: Select, *, limit: int, offset: int) -> tuple[list[Any], int]:
    total = session.exec(select(func.count()).select_from(statement.order_by(None).subquery())).one()
    return list(session.exec(statement.offset(offset).limit(limit)).all()), total


def get_claim(session: Session, claim_id: str, *, for_update: bool = False) -> RegistrationClaim | None:
    statement = select(RegistrationClaim).where(RegistrationClaim.id == claim_id)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def open_claim(session: Session, claimant_user_id: str, registration_number: str) -> RegistrationClaim | None:
    return session.exec(
        select(RegistrationClaim).where(
            RegistrationClaim.claimant_user_id == claimant_user_id,
            RegistrationClaim.registration_number == registration_number,
            RegistrationClaim.status == "open",
        )
    ).first()


def list_claims(
    session: Session, *, status: str | None, limit: int, offset: int
) -> tuple[list[RegistrationClaim], int]:
    statement = select(RegistrationClaim)
    if status:
        statement = statement.where(RegistrationClaim.status == status)
    statement = statement.order_by(col(RegistrationClaim.created_at), col(RegistrationClaim.id))
    return _paged(session, statement, limit=limit, offset=offset)


def verification_of(session: Session, expert_ids: list[str]) -> dict[str, str]:
    if not expert_ids:
        return {}
    rows = session.exec(select(Expert.id, Expert.verification).where(col(Expert.id).in_(expert_ids))).all()
    return dict(rows)


def get_correction(session: Session, correction_id: str, *, for_update: bool = False) -> CorrectionRequest | None:
    statement = select(CorrectionRequest).where(CorrectionRequest.id == correction_id)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def list_corrections(
    session: Session, *, expert_id: str | None = None, status: str | None = None, limit: int, offset: int
) -> tuple[list[CorrectionRequest], int]:
    statement = select(CorrectionRequest)
    if expert_id is not None:
        statement = statement.where(CorrectionRequest.expert_id == expert_id)
    if status:
        statement = statement.where(CorrectionRequest.status == status)
    statement = statement.order_by(col(CorrectionRequest.created_at), col(CorrectionRequest.id))
    return _paged(session, statement, limit=limit, offset=offset)


def get_invitation(session: Session, invitation_id: str, *, for_update: bool = False) -> OrganizationInvitation | None:
    statement = select(OrganizationInvitation).where(OrganizationInvitation.id == invitation_id)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def pending_invitation(session: Session, organization_id: str, user_id: str) -> OrganizationInvitation | None:
    return session.exec(
        select(OrganizationInvitation).where(
            OrganizationInvitation.organization_id == organization_id,
            OrganizationInvitation.user_id == user_id,
            OrganizationInvitation.status == "pending",
        )
    ).first()


def list_invitations(
    session: Session,
    *,
    user_id: str | None = None,
    organization_id: str | None = None,
    status: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[OrganizationInvitation, str]], int]:
    """Invitations with their organisation's name, oldest first."""
    statement = select(OrganizationInvitation, Organization.name).join(
        Organization, Organization.id == OrganizationInvitation.organization_id
    )
    if user_id is not None:
        statement = statement.where(OrganizationInvitation.user_id == user_id)
    if organization_id is not None:
        statement = statement.where(OrganizationInvitation.organization_id == organization_id)
    if status:
        statement = statement.where(OrganizationInvitation.status == status)
    statement = statement.order_by(col(OrganizationInvitation.created_at), col(OrganizationInvitation.id))
    return _paged(session, statement, limit=limit, offset=offset)


def listed_experts_by_id(session: Session, *, limit: int, offset: int) -> tuple[list[Expert], int]:
    """Listed (verified) entries in id order and their total: what the search index should hold (the
    search reindex pages through them; id order keeps pages stable while entries change)."""
    statement = select(Expert).where(Expert.verification == "verified").order_by(col(Expert.id))
    return page(session, statement, limit=limit, offset=offset)
