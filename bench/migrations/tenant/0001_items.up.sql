-- The benchmark's migration (bench/migrate-bench.ts): a table, an index, a column, as a typical
-- tenant migration. The psql floor runs exactly this text in every schema.
CREATE TABLE items (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sku         text NOT NULL,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX items_sku ON items (sku, created_at);
ALTER TABLE items ADD COLUMN price_cents integer NOT NULL DEFAULT 0;
