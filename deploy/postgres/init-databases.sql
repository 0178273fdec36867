-- Tsunagu — create one database per service (docker-compose only).
-- つなぐ — サービスごとのデータベースを作成する（docker-compose 用）。
--
-- The official postgres image runs every *.sql file in
-- /docker-entrypoint-initdb.d once, as POSTGRES_USER (tsunagu), the first time
-- the data volume is initialised. docker-compose.yml mounts this file there.
--
-- Each service owns its database and never reads another's tables (see
-- docs/architecture.md); the scorer worker uses the matching database.
-- The tables themselves are created by each service's Alembic migrations
-- (`tsunagu migrate <service>`, or `tsunagu serve` at start), not here.
--
-- CREATE DATABASE cannot run inside a transaction block; psql runs each
-- statement of this file on its own (autocommit), which is what we need.
-- Owner is the connecting role (tsunagu), so migrations can create tables.
-- UTF8 is spelled out (not inherited from the cluster default) because every
-- database stores Japanese text; template0 is required to choose an encoding.

CREATE DATABASE profiles ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE matching ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE search   ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE gateway  ENCODING 'UTF8' TEMPLATE template0;
