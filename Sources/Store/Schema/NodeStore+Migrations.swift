import GRDB
import Model

extension NodeStore {
    /// Schema migrations, from the first commit on. Never edit a shipped migration: add one.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1: node, change log, curriculum, learner records") { db in
            try db.execute(sql: """
                -- Administrative units: 34 provinces, 3,321 communes (official codes).
                CREATE TABLE province (
                  code INTEGER PRIMARY KEY CHECK (code > 0),
                  name TEXT NOT NULL
                );
                CREATE TABLE commune (
                  code INTEGER PRIMARY KEY CHECK (code > 0),
                  province_code INTEGER NOT NULL REFERENCES province(code),
                  name TEXT NOT NULL,
                  kind TEXT NOT NULL
                );
                CREATE INDEX commune_province ON commune(province_code);

                -- Replication bookkeeping. One origin per (node, epoch); the local node's row is 'node'.
                CREATE TABLE origin (
                  origin_no INTEGER PRIMARY KEY,
                  node_id BLOB NOT NULL CHECK (length(node_id) = 32),
                  epoch INTEGER NOT NULL,
                  contiguous_seq INTEGER NOT NULL DEFAULT 0 CHECK (contiguous_seq >= 0),
                  last_batch_id BLOB,
                  quarantine_reason TEXT,
                  UNIQUE (node_id, epoch)
                );
                CREATE TABLE node (
                  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
                  origin_no INTEGER NOT NULL REFERENCES origin(origin_no),
                  hlc INTEGER NOT NULL DEFAULT 0,
                  next_seq INTEGER NOT NULL DEFAULT 1 CHECK (next_seq >= 1),
                  created_at INTEGER NOT NULL
                );
                -- Local changes committed with their data, waiting to be sealed into a signed batch.
                CREATE TABLE pending_change (
                  seq INTEGER PRIMARY KEY,
                  body BLOB NOT NULL
                );
                -- The change log: every batch, local or remote, stored as signed and forwarded unchanged.
                CREATE TABLE batch (
                  origin_no INTEGER NOT NULL REFERENCES origin(origin_no),
                  first_seq INTEGER NOT NULL CHECK (first_seq >= 1),
                  last_seq INTEGER NOT NULL CHECK (last_seq >= first_seq),
                  previous_id BLOB NOT NULL CHECK (length(previous_id) = 32),
                  batch_id BLOB NOT NULL CHECK (length(batch_id) = 32),
                  body BLOB NOT NULL,
                  signature BLOB NOT NULL CHECK (length(signature) = 64),
                  received_at INTEGER NOT NULL,
                  UNIQUE (origin_no, first_seq)
                );
                CREATE TABLE quarantine (
                  id INTEGER PRIMARY KEY,
                  origin_no INTEGER REFERENCES origin(origin_no),
                  seq INTEGER,
                  hlc INTEGER NOT NULL DEFAULT 0,
                  kind INTEGER NOT NULL,
                  reason_code TEXT NOT NULL,
                  reason TEXT NOT NULL,
                  body BLOB NOT NULL,
                  received_at INTEGER NOT NULL,
                  resolved_at INTEGER
                );
                CREATE INDEX quarantine_open ON quarantine(resolved_at, reason_code);

                -- Curriculum, from admin-signed releases only.
                CREATE TABLE curriculum_release (
                  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
                  version INTEGER NOT NULL CHECK (version >= 1),
                  installed_at INTEGER NOT NULL
                );
                CREATE TABLE framework_area (
                  area_id TEXT PRIMARY KEY CHECK (length(area_id) BETWEEN 1 AND 100),
                  title TEXT NOT NULL,
                  position INTEGER NOT NULL
                );
                CREATE TABLE course (
                  course_id TEXT PRIMARY KEY CHECK (length(course_id) BETWEEN 1 AND 100),
                  area_id TEXT NOT NULL REFERENCES framework_area(area_id),
                  title TEXT NOT NULL,
                  pass_percent INTEGER NOT NULL CHECK (pass_percent BETWEEN 1 AND 100),
                  position INTEGER NOT NULL
                );
                CREATE TABLE course_role (
                  course_id TEXT NOT NULL REFERENCES course(course_id) ON DELETE CASCADE,
                  role TEXT NOT NULL CHECK (role IN ('na_deputy', 'provincial_council_delegate',
                    'commune_council_delegate', 'civil_servant', 'other')),
                  PRIMARY KEY (course_id, role)
                ) WITHOUT ROWID;
                CREATE TABLE course_province (
                  course_id TEXT NOT NULL REFERENCES course(course_id) ON DELETE CASCADE,
                  province_code INTEGER NOT NULL REFERENCES province(code),
                  PRIMARY KEY (course_id, province_code)
                ) WITHOUT ROWID;
                CREATE TABLE lesson (
                  lesson_id TEXT PRIMARY KEY CHECK (length(lesson_id) BETWEEN 1 AND 100),
                  course_id TEXT NOT NULL REFERENCES course(course_id),
                  title TEXT NOT NULL,
                  required INTEGER NOT NULL CHECK (required IN (0, 1)),
                  position INTEGER NOT NULL
                );
                CREATE INDEX lesson_course ON lesson(course_id);
                CREATE TABLE quiz (
                  quiz_id TEXT PRIMARY KEY CHECK (length(quiz_id) BETWEEN 1 AND 100),
                  course_id TEXT NOT NULL REFERENCES course(course_id),
                  title TEXT NOT NULL,
                  position INTEGER NOT NULL
                );
                CREATE INDEX quiz_course ON quiz(course_id);
                CREATE TABLE question (
                  question_id TEXT PRIMARY KEY,
                  quiz_id TEXT NOT NULL REFERENCES quiz(quiz_id) ON DELETE CASCADE,
                  position INTEGER NOT NULL,
                  prompt TEXT NOT NULL,
                  choices TEXT NOT NULL,
                  answer INTEGER NOT NULL CHECK (answer >= 0),
                  points INTEGER NOT NULL CHECK (points > 0)
                );
                CREATE INDEX question_quiz ON question(quiz_id);

                -- Replicated learner-side records. No foreign keys between them: changes from
                -- different origins arrive in any order (a result may precede its learner).
                CREATE TABLE learner (
                  learner_id TEXT PRIMARY KEY CHECK (length(learner_id) = 32),
                  national_id TEXT NOT NULL CHECK (length(national_id) = 12 AND national_id NOT GLOB '*[^0-9]*'),
                  full_name TEXT, full_name_hlc INTEGER, full_name_node BLOB,
                  role TEXT CHECK (role IN ('na_deputy', 'provincial_council_delegate',
                    'commune_council_delegate', 'civil_servant', 'other')),
                  role_hlc INTEGER, role_node BLOB,
                  unit TEXT, unit_hlc INTEGER, unit_node BLOB,
                  home_commune INTEGER REFERENCES commune(code), home_commune_hlc INTEGER, home_commune_node BLOB
                ) WITHOUT ROWID;
                CREATE INDEX learner_home ON learner(home_commune);
                CREATE TABLE enrollment (
                  learner_id TEXT NOT NULL,
                  course_id TEXT NOT NULL REFERENCES course(course_id),
                  length INTEGER NOT NULL CHECK (length >= 1),
                  PRIMARY KEY (learner_id, course_id)
                ) WITHOUT ROWID;
                CREATE TABLE progress (
                  learner_id TEXT NOT NULL,
                  lesson_id TEXT NOT NULL REFERENCES lesson(lesson_id),
                  percent INTEGER NOT NULL CHECK (percent BETWEEN 0 AND 100),
                  completed_at INTEGER CHECK (completed_at IS NULL OR percent = 100),
                  PRIMARY KEY (learner_id, lesson_id)
                ) WITHOUT ROWID;
                CREATE TABLE attempt (
                  attempt_id TEXT PRIMARY KEY CHECK (length(attempt_id) = 36),
                  learner_id TEXT NOT NULL,
                  quiz_id TEXT NOT NULL REFERENCES quiz(quiz_id),
                  answers BLOB NOT NULL,
                  score INTEGER NOT NULL,
                  max_score INTEGER NOT NULL CHECK (max_score > 0),
                  started_at INTEGER NOT NULL,
                  finished_at INTEGER NOT NULL,
                  CHECK (score BETWEEN 0 AND max_score),
                  CHECK (finished_at >= started_at)
                ) WITHOUT ROWID;
                -- Derived, never replicated: each learner's best attempt per quiz, kept in the merge
                -- transaction (cheaper than an index over every attempt; see BENCHMARKS.md).
                CREATE TABLE quiz_best (
                  learner_id TEXT NOT NULL,
                  quiz_id TEXT NOT NULL,
                  best_score INTEGER NOT NULL,
                  max_score INTEGER NOT NULL CHECK (max_score > 0),
                  PRIMARY KEY (learner_id, quiz_id)
                ) WITHOUT ROWID;
                -- Attempt ids seen with two different contents: set aside on every replica alike.
                CREATE TABLE attempt_conflict (
                  attempt_id TEXT PRIMARY KEY
                ) WITHOUT ROWID;
                CREATE TABLE certificate (
                  certificate_id TEXT PRIMARY KEY CHECK (length(certificate_id) = 32),
                  learner_id TEXT NOT NULL,
                  course_id TEXT NOT NULL REFERENCES course(course_id),
                  issued_at INTEGER NOT NULL,
                  revoked_at INTEGER,
                  UNIQUE (learner_id, course_id)
                ) WITHOUT ROWID;
                """)
        }
        m.registerMigration("v2: hub enrollment registry") { db in
            try db.execute(sql: """
                -- Hub only: which commune each site key pair belongs to. A revoked row stays, so a
                -- revoked key can never be enrolled again by mistake.
                CREATE TABLE enrolled_site (
                  commune_code INTEGER PRIMARY KEY REFERENCES commune(code),
                  identity_key BLOB NOT NULL UNIQUE CHECK (length(identity_key) = 32),
                  transport_key BLOB NOT NULL UNIQUE CHECK (length(transport_key) = 32),
                  enrolled_at INTEGER NOT NULL,
                  revoked_at INTEGER,
                  last_heard_at INTEGER
                );
                """)
        }
        m.registerMigration("v3: derived learner facts and commune totals") { db in
            try db.execute(sql: """
                -- Derived, never replicated. Per learner: where they count and what they hold;
                -- per commune: the sums. Kept in the merge transaction for learners whose records
                -- changed, so national figures are current without rescanning results.
                CREATE TABLE learner_fact (
                  learner_id TEXT PRIMARY KEY,
                  home_commune INTEGER,
                  certified INTEGER NOT NULL CHECK (certified IN (0, 1)),
                  -- "course:EC;…": per course, Enrolled and/or Completed (see FactKeeper.Fact).
                  courses TEXT NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE commune_totals (
                  commune_code INTEGER PRIMARY KEY REFERENCES commune(code),
                  learners INTEGER NOT NULL DEFAULT 0 CHECK (learners >= 0),
                  enrolled INTEGER NOT NULL DEFAULT 0 CHECK (enrolled >= 0),
                  certified INTEGER NOT NULL DEFAULT 0 CHECK (certified >= 0)
                );
                CREATE TABLE commune_course_totals (
                  commune_code INTEGER NOT NULL REFERENCES commune(code),
                  course_id TEXT NOT NULL,
                  enrolled INTEGER NOT NULL DEFAULT 0 CHECK (enrolled >= 0),
                  completed INTEGER NOT NULL DEFAULT 0 CHECK (completed >= 0),
                  PRIMARY KEY (commune_code, course_id)
                ) WITHOUT ROWID;
                """)
        }
        m.registerMigration("v4: signed release manifests") { db in
            try db.execute(sql: """
                -- The signed manifest of the installed release, and of one being fetched. A release
                -- becomes 'installed' in the same transaction that switches the curriculum.
                CREATE TABLE release_manifest (
                  version INTEGER PRIMARY KEY CHECK (version >= 1),
                  manifest BLOB NOT NULL,
                  signatures BLOB NOT NULL,
                  state TEXT NOT NULL CHECK (state IN ('fetching', 'installed')),
                  received_at INTEGER NOT NULL
                );
                """)
        }
        m.registerMigration("v5: clock offset adopted from the hub") { db in
            try db.execute(sql: "ALTER TABLE node ADD COLUMN clock_offset_ms INTEGER NOT NULL DEFAULT 0")
        }
        m.registerMigration("v6: home feed (records coming home to their learners' site)") { db in
            try db.execute(sql: """
                -- Hub: per site, the changes about its learners that other sites recorded, in order.
                CREATE TABLE home_feed (
                  commune_code INTEGER NOT NULL,
                  seq INTEGER NOT NULL CHECK (seq >= 1),
                  node_id BLOB NOT NULL CHECK (length(node_id) = 32),
                  body BLOB NOT NULL,
                  PRIMARY KEY (commune_code, seq)
                ) WITHOUT ROWID;
                -- Site: the last feed entry applied.
                ALTER TABLE node ADD COLUMN home_feed_seq INTEGER NOT NULL DEFAULT 0;
                """)
        }
        m.registerMigration("v7: certificates count only with completion evidence") { db in
            try db.execute(sql: """
                -- A certificate counts as certified only for a course completed by the one rule;
                -- one without that evidence is flagged (counted apart), never counted.
                ALTER TABLE learner_fact ADD COLUMN unbacked INTEGER NOT NULL DEFAULT 0 CHECK (unbacked IN (0, 1));
                ALTER TABLE commune_totals ADD COLUMN unbacked_certificates INTEGER NOT NULL DEFAULT 0
                  CHECK (unbacked_certificates >= 0);
                -- Facts were computed by the old rule: recompute them all (NodeStore.init).
                DELETE FROM learner_fact;
                UPDATE commune_totals SET learners = 0, enrolled = 0, certified = 0;
                UPDATE commune_course_totals SET enrolled = 0, completed = 0;
                """)
        }
        m.registerMigration("v8: import journal (each imported line once)") { db in
            try db.execute(sql: """
                -- Site, never replicated: every line `hocvu site import` has decided, by its key
                -- (BLAKE2b chained over the file's lines up to it: docs/import-format.md), written in
                -- the transaction that recorded it. A re-run skips what is here.
                CREATE TABLE import_line (
                  line_key BLOB PRIMARY KEY CHECK (length(line_key) = 16),
                  -- NULL: recorded; otherwise why the line was refused (re-reported, not retried).
                  refused TEXT,
                  imported_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                """)
        }
        m.registerMigration("v9: rosters (who must be trained) and per-role totals") { db in
            try db.execute(sql: """
                -- Replicated, written by the hub only (docs/crdt-rules.md, "Rosters"): the officials each
                -- commune must train. One last-writer-wins entry per person; a removal is an entry
                -- with active = 0 (a tombstone), so it wins over what it removes on every replica.
                -- A site holds only entries about its own commune (its home feed).
                CREATE TABLE roster (
                  learner_id TEXT PRIMARY KEY CHECK (length(learner_id) BETWEEN 1 AND 64),
                  national_id TEXT NOT NULL CHECK (length(national_id) = 12),
                  -- Text rules are the validator's (it counts characters as a reader does; SQLite's
                  -- length() counts code points): here only "not empty".
                  full_name TEXT NOT NULL CHECK (length(full_name) >= 1),
                  role TEXT NOT NULL CHECK (role IN ('na_deputy', 'provincial_council_delegate',
                    'commune_council_delegate', 'civil_servant', 'other')),
                  unit TEXT NOT NULL CHECK (length(unit) >= 1),
                  commune_code INTEGER NOT NULL REFERENCES commune(code),
                  active INTEGER NOT NULL CHECK (active IN (0, 1)),
                  hlc INTEGER NOT NULL,
                  node BLOB NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX roster_by_commune ON roster (commune_code, full_name) WHERE active = 1;
                -- Hub: each roster import that changed something (a running hub watches it to push feeds).
                CREATE TABLE roster_import (
                  id INTEGER PRIMARY KEY,
                  imported_at INTEGER NOT NULL,
                  changes INTEGER NOT NULL
                );
                -- Site: its commune, as the hub's signed home feed first named it; a feed for another
                -- commune is refused from then on.
                ALTER TABLE node ADD COLUMN commune_code INTEGER;
                -- Derived: where a learner counts by role, and on which roster they stand.
                ALTER TABLE learner_fact ADD COLUMN role TEXT;
                ALTER TABLE learner_fact ADD COLUMN roster_commune INTEGER;
                ALTER TABLE learner_fact ADD COLUMN roster_role TEXT;
                -- Per commune and role: the roster (by the roster's commune and role) and the learners
                -- (by their home commune and role); off_roster = learners on no roster.
                CREATE TABLE commune_role_totals (
                  commune_code INTEGER NOT NULL,
                  role TEXT NOT NULL,
                  roster INTEGER NOT NULL DEFAULT 0 CHECK (roster >= 0),
                  roster_enrolled INTEGER NOT NULL DEFAULT 0 CHECK (roster_enrolled >= 0),
                  roster_certified INTEGER NOT NULL DEFAULT 0 CHECK (roster_certified >= 0),
                  learners INTEGER NOT NULL DEFAULT 0 CHECK (learners >= 0),
                  enrolled INTEGER NOT NULL DEFAULT 0 CHECK (enrolled >= 0),
                  certified INTEGER NOT NULL DEFAULT 0 CHECK (certified >= 0),
                  off_roster INTEGER NOT NULL DEFAULT 0 CHECK (off_roster >= 0),
                  off_roster_certified INTEGER NOT NULL DEFAULT 0 CHECK (off_roster_certified >= 0),
                  PRIMARY KEY (commune_code, role)
                ) WITHOUT ROWID;
                -- Hub: the trend. Per Vietnam day (Asia/Ho_Chi_Minh), the totals of each unit and role:
                -- unit 0 the nation and -code a province, written every day; a commune (its code) only
                -- on the days its totals changed (read forward from the last row). See docs/data-model.md.
                CREATE TABLE daily_totals (
                  unit INTEGER NOT NULL,
                  role TEXT NOT NULL,
                  day TEXT NOT NULL CHECK (length(day) = 10),
                  roster INTEGER NOT NULL,
                  roster_enrolled INTEGER NOT NULL,
                  roster_certified INTEGER NOT NULL,
                  learners INTEGER NOT NULL,
                  certified INTEGER NOT NULL,
                  PRIMARY KEY (unit, role, day)
                ) WITHOUT ROWID;
                -- Facts gained columns: recompute them all. The need is durable (NodeStore.init
                -- rebuilds while it is set and clears it in the rebuild's transaction), so a rebuild
                -- killed half-way is done again at the next start, never skipped.
                ALTER TABLE node ADD COLUMN facts_rebuild_needed INTEGER NOT NULL DEFAULT 0;
                UPDATE node SET facts_rebuild_needed = 1;
                -- A site built before protocol minor 3 set the hub's roster entries aside as
                -- malformed_feed_entry and moved past them: take the whole feed again (re-merging is
                -- idempotent), so an upgraded site receives its roster.
                UPDATE node SET home_feed_seq = 0;
                DELETE FROM learner_fact;
                UPDATE commune_totals SET learners = 0, enrolled = 0, certified = 0, unbacked_certificates = 0;
                UPDATE commune_course_totals SET enrolled = 0, completed = 0;
                """)
        }
        m.registerMigration("v-dashboard-accounts: dashboard users, lockout and audit log") { db in
            try db.execute(sql: """
                -- Hub only: who may open the web dashboard. province_code NULL = a national viewer;
                -- otherwise the viewer sees that province only. The password is an Argon2id string
                -- (libsodium crypto_pwhash_str), never the password. Lockout state lives here, not
                -- in memory, so a restart does not hand an attacker five fresh guesses.
                CREATE TABLE dashboard_user (
                  name TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^a-z0-9._-]*'),
                  password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
                  province_code INTEGER REFERENCES province(code),
                  created_at INTEGER NOT NULL,
                  failed_attempts INTEGER NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
                  locked_until INTEGER
                ) WITHOUT ROWID;
                -- Append-only: who opened a page showing personal data (a commune's roster), and
                -- sign-ins. No foreign key: the trail outlives a removed account.
                CREATE TABLE dashboard_audit (
                  id INTEGER PRIMARY KEY,
                  at INTEGER NOT NULL,
                  user_name TEXT NOT NULL,
                  action TEXT NOT NULL CHECK (action IN ('sign_in', 'sign_in_refused', 'locked', 'sign_out', 'view_roster')),
                  target TEXT NOT NULL DEFAULT ''
                );
                """)
        }
        m.registerMigration("v-portal: learner codes and PINs, operator accounts, app tokens, API write journal") { db in
            try db.execute(sql: """
                -- Site only, never replicated (docs/portal.md): who may sign in to the learner portal.
                -- kind 'operator': name is the operator's user name, the secret a password.
                -- kind 'learner': name is the learner's 8-digit code (never the national ID), the
                -- secret the PIN the operator set (NULL until set). Secrets are Argon2id strings.
                -- Lockout state is here, not in memory: a restart gives an attacker no fresh guesses.
                CREATE TABLE portal_account (
                  kind TEXT NOT NULL CHECK (kind IN ('operator', 'learner')),
                  name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^a-z0-9._-]*'),
                  learner_id TEXT UNIQUE CHECK ((kind = 'learner') = (learner_id IS NOT NULL)),
                  secret_hash TEXT CHECK (secret_hash IS NULL OR secret_hash LIKE '$argon2id$%'),
                  created_at INTEGER NOT NULL,
                  failed_attempts INTEGER NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
                  locked_until INTEGER,
                  PRIMARY KEY (kind, name)
                ) WITHOUT ROWID;
                -- Learning apps the operator issued an API token to: only the token's BLAKE2b hash.
                CREATE TABLE portal_app (
                  name TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^a-z0-9._-]*'),
                  token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
                  created_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                -- Idempotent writes: a client-chosen id per write, with the hash of what was asked and
                -- the answer given, in the transaction that recorded it; a retry gets the same answer.
                CREATE TABLE portal_write (
                  client TEXT NOT NULL,
                  client_id TEXT NOT NULL CHECK (length(client_id) BETWEEN 1 AND 64),
                  request_hash BLOB NOT NULL,
                  response TEXT NOT NULL,
                  at INTEGER NOT NULL,
                  PRIMARY KEY (client, client_id)
                ) WITHOUT ROWID;
                """)
        }
        m.registerMigration("v-home-feed-source: which hub's numbering the home-feed cursor follows") { db in
            // Several hub processes each number a commune's home feed their own way (docs/multi-hub.md):
            // the cursor is only meaningful for the hub endpoint it came from. NULL: from the one hub
            // of a single-hub setup (taken to be the first endpoint listed).
            try db.execute(sql: "ALTER TABLE node ADD COLUMN home_feed_source TEXT")
        }
        return m
    }
}
