-- Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d):
-- one database per part, owned by the platform's user (POSTGRES_USER).
CREATE DATABASE cert_registry;
CREATE DATABASE cert_enforcement;
CREATE DATABASE cert_statistics;
CREATE DATABASE cert_gateway;
