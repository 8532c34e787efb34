-- What the input layer changed before classifying (truncated, invalid UTF-8 replaced...),
-- so a history row explains why its snippet looks odd. JSON list of strings, NULL when none.
ALTER TABLE predictions ADD COLUMN input_notes TEXT;
