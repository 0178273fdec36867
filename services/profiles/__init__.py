"""Profiles service: the 登録セキスペ active list, DX talent and SME organisations (see docs/profiles.md)."""
