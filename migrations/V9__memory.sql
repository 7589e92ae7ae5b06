-- MAOS schema, version 9: memory that outlives a task. One row per entry: the columns that
-- lists, searches and the sweep filter and sort on, the text and tags that the full-text index
-- reads, and the rest of the entry as JSON (`extra`: provenance, why it was forgotten). Like
-- every other aggregate, an entry and its events are written in one transaction.

CREATE TABLE memories (
    -- The full-text index's key: an alias of the rowid, so that VACUUM keeps it.
    seq        INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    tier       TEXT    NOT NULL,
    scope      TEXT    NOT NULL,           -- `global`, `repo:<path>`, `orchestration:<id>`
    state      TEXT    NOT NULL,
    pinned     INTEGER NOT NULL CHECK (pinned IN (0, 1)),
    expires_at INTEGER,                    -- ephemeral entries only
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    text       TEXT    NOT NULL,
    tags       TEXT    NOT NULL,           -- space-separated, sorted (also in memory_tags)
    extra      TEXT    NOT NULL
) STRICT;

-- Lists, newest first, and the same within one scope.
CREATE INDEX memories_by_age ON memories (created_at, id);
CREATE INDEX memories_by_scope ON memories (scope, created_at, id);
-- The sweep: live, unpinned entries with a deadline, soonest first.
CREATE INDEX memories_due ON memories (expires_at)
    WHERE state = 'live' AND pinned = 0 AND expires_at IS NOT NULL;

-- One row per (tag, entry): the tag filter of lists and searches.
CREATE TABLE memory_tags (
    tag    TEXT NOT NULL,
    memory TEXT NOT NULL REFERENCES memories (id),
    PRIMARY KEY (tag, memory)
) STRICT, WITHOUT ROWID;

-- The full-text index of the entries' text and tags (an external-content FTS5 table over
-- `memories`, by `seq`), kept in step by triggers, so in the same transaction as the row.
-- `unicode61` with diacritics removed: `café` finds `cafe`.
CREATE VIRTUAL TABLE memory_fts USING fts5 (
    text,
    tags,
    content = 'memories',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memory_fts (rowid, text, tags) VALUES (NEW.seq, NEW.text, NEW.tags);
END;

CREATE TRIGGER memories_fts_update AFTER UPDATE OF text, tags ON memories BEGIN
    INSERT INTO memory_fts (memory_fts, rowid, text, tags)
        VALUES ('delete', OLD.seq, OLD.text, OLD.tags);
    INSERT INTO memory_fts (rowid, text, tags) VALUES (NEW.seq, NEW.text, NEW.tags);
END;

CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
    INSERT INTO memory_fts (memory_fts, rowid, text, tags)
        VALUES ('delete', OLD.seq, OLD.text, OLD.tags);
END;
