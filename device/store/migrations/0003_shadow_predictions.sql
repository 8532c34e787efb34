-- Shadow mode ([model] shadow): a second model scores the same text off the request path; its answer
-- is kept beside the served prediction and synced with it. NULL when no shadow ran.
ALTER TABLE predictions ADD COLUMN shadow_model TEXT;
ALTER TABLE predictions ADD COLUMN shadow_version TEXT;
ALTER TABLE predictions ADD COLUMN shadow_p0 REAL;
ALTER TABLE predictions ADD COLUMN shadow_p1 REAL;
