"""Ingest: pull raw job postings (Bright Data's LinkedIn dataset, file drops) and normalise every
source into `shared.posting.JobPosting`.

Layout:
* `brightdata.py`  - the Web Scraper API client (trigger -> progress -> snapshot).
* `file_drop.py`   - JSON array / JSONL / CSV readers for other scrapers' output.
* `sources/`       - one mapper per source layout, raw record -> JobPosting.
* `language.py`    - offline English detector (stop-word ratio).
* `normalize.py`   - de-duplication, quarantine, counts.
* `command.py`, `normalize_command.py` - the `careeredge-cloud ingest|normalize` steps.
"""
