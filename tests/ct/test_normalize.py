"""Normalisation of every source into JobPosting: mapping, HTML cleaning, de-dup, quarantine, language."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cloud.cli import main as cloud_cli
from cloud.ingest.file_drop import read_records
from cloud.ingest.language import guess_language
from cloud.ingest.normalize import Batch, normalize
from cloud.ingest.sources import detect_source
from cloud.ingest.sources.base import canonical_url
from tests.conftest import require

FIXTURES = Path(__file__).parent / "fixtures"
STREAM = Path(__file__).resolve().parents[2] / "data" / "stream_2026"


def fixture(name):
    return json.loads((FIXTURES / name).read_text("utf-8"))


def by_id(result):
    return {p.source_id: p for p in result.postings}


def test_brightdata_2024_layout():
    result = normalize([Batch("week1", fixture("brightdata_2024_layout.json"))])
    postings = by_id(result)
    ds = postings["4100000001"]
    assert ds.source == "brightdata_linkedin" and ds.title == "Senior Data Scientist"
    assert ds.extra["layout"] == "2024" and ds.extra["batch"] == "week1"
    assert ds.posted_date == "2024-12-02" and ds.company == "Acme"
    # job_description_formatted is HTML: tags gone, entities decoded, block tags become lines.
    assert "<" not in ds.description and "Python & SQL" in ds.description
    assert "forecasting models" in ds.description.splitlines()[0]
    reasons = {q["record"].get("job_posting_id") or q["record"]["input"]["url"]: q["reason"] for q in result.quarantine}
    assert reasons["4100000003"] == "missing description"
    assert reasons["https://www.linkedin.com/jobs/view/4100000004"].startswith("scraper error row (dead_page)")


def test_brightdata_2025_layout_missing_title_non_english_and_duplicate():
    result = normalize(
        [Batch("w1", fixture("brightdata_2024_layout.json")), Batch("w2", fixture("brightdata_2025_layout.json"))]
    )
    agentic = by_id(result)["4300000001"]
    assert agentic.extra["layout"] == "2025"
    assert agentic.extra["base_pay_range"].startswith("£70,000")
    reasons = sorted(q["reason"] for q in result.quarantine if q["batch"] == "w2")
    assert reasons == ["duplicate by source_id of brightdata_linkedin:4100000001", "missing title", "non-English (de)"]
    report = result.report()
    assert report["non_english"] == 1 and report["languages"]["de"] == 1
    assert report["records_seen"] == 8 == report["kept"] + report["quarantined"]


def test_kaggle_2025_csv(kaggle_csv):
    require(kaggle_csv.is_file(), f"committed 2025 CSV {kaggle_csv}")
    records = read_records(kaggle_csv)
    result = normalize([Batch("kaggle", records)])
    assert len(records) == 735
    assert set(result.kept_by_source) == {"kaggle_2025"}
    posting = result.postings[0]
    assert posting.source_id == "3129ec5dde24f0d3"  # Indeed's jk, not the whole URL
    assert posting.title == "Senior Data Scientist, Research, YouTube Search"
    assert result.report()["kept"] + result.report()["quarantined"] == 735
    # Only true duplicates go: Indeed URLs differ by jk, so nothing is a URL duplicate.
    assert not any(q["reason"].startswith("duplicate by url") for q in result.quarantine)


@pytest.mark.parametrize(
    "name, source", [("linkedin_jobs.csv", "linkedin_uk_2026"), ("adzuna_jobs.csv", "adzuna_uk_2026")]
)
def test_uk_2026_stream(name, source):
    records = read_records(STREAM / name)
    result = normalize([Batch(Path(name).stem, records)])
    assert set(result.kept_by_source) == {source}
    # The job id from the link (/jobs/view/<id>, /details/<id>, /land/ad/<id>), not a URL hash.
    assert all(p.source_id.isdigit() and p.source_id in p.url for p in result.postings)
    assert result.report()["kept"] + result.report()["quarantined"] == len(records)
    # Repeated job links are removed and said so, never silently.
    assert all(q["reason"].startswith("duplicate by") for q in result.quarantine)
    if source == "adzuna_uk_2026":
        dated = [p for p in result.postings if p.posted_date]
        assert dated and all(p.posted_date.startswith("2026-0") for p in dated)


def test_same_linkedin_job_from_two_sources_is_a_url_duplicate():
    bright = fixture("brightdata_2024_layout.json")[0]
    uk_row = {
        "job_link": "https://www.linkedin.com/jobs/view/4100000001",
        "platform": "LinkedIn",
        "job_title": "Senior Data Scientist (UK)",
        "job_description": "A different scrape of the same job " * 10,
        "location": "",
        "job_employment_type": "",
        "job_maturity": "",
        "job_min_salary": "",
        "job_max_salary": "",
        "job_salary_period": "",
        "employer_name": "Acme",
        "employer_rating": "",
        "job_posted_date": "",
    }
    result = normalize([Batch("bd", [bright]), Batch("uk", [uk_row])])
    assert [q["reason"] for q in result.quarantine] == ["duplicate by url of brightdata_linkedin:4100000001"]


def test_content_duplicate_across_ids():
    record = fixture("brightdata_2024_layout.json")[0]
    repost = {**record, "job_posting_id": "4199999999", "url": "https://www.linkedin.com/jobs/view/4199999999"}
    result = normalize([Batch("w", [record, repost])])
    assert result.quarantine[0]["reason"].startswith("duplicate by content")


def test_unknown_layout_is_quarantined_not_dropped():
    result = normalize([Batch("odd", [{"foo": 1, "bar": 2}])])
    assert result.quarantine[0]["reason"].startswith("unknown layout")
    assert result.report()["quarantined_by_reason"] == {"unknown layout": 1}


def test_real_brightdata_samples_both_layouts(shared_data):
    """The published Bright Data samples (no licence: read from ../shared, never committed)."""
    old = shared_data / "brightdata_luminati-io_LinkedIn-Scraper"
    new = shared_data / "brightdata_docs_bencrane_api-reference-docs" / "linkedin_job_listings_sample_payload.json"
    batches = [Batch(p.stem, read_records(p)) for p in sorted(old.glob("*.json"))] + [Batch("new", read_records(new))]
    assert all(detect_source(r).name == "brightdata_linkedin" for b in batches for r in b.records)
    result = normalize(batches)
    layouts = {p.extra["layout"] for p in result.postings}
    assert layouts == {"2024", "2025"}
    assert all("<" not in p.description and p.description for p in result.postings)
    assert result.report()["non_english"] == 1  # the Dutch accountant posting
    assert result.report()["kept"] + result.report()["quarantined"] == 45


def test_file_drop_formats_agree(tmp_path):
    records = fixture("brightdata_2024_layout.json")[:2]
    flat = [{k: v for k, v in r.items() if not isinstance(v, (dict, list))} for r in records]
    (tmp_path / "drop.json").write_text(json.dumps(flat))
    (tmp_path / "drop.jsonl").write_text("\n".join(json.dumps(r) for r in flat) + "\n")
    with open(tmp_path / "drop.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(flat[0]))
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in flat)
    results = [normalize([Batch("d", read_records(tmp_path / f"drop.{ext}"))]) for ext in ("json", "jsonl", "csv")]
    descriptions = [[p.description for p in r.postings] for r in results]
    assert descriptions[0] == descriptions[1] == descriptions[2] and len(descriptions[0]) == 2


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.json", "{not json", "invalid JSON"),
        ("bad.jsonl", '{"a": 1}\nnope\n', "line 2 is not valid JSON"),
        ("empty.csv", "", "empty"),
        ("drop.xml", "<jobs/>", "unsupported file drop"),
    ],
)
def test_bad_file_drops_exit_2(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    result = CliRunner().invoke(
        cloud_cli, ["ingest", "--out", str(tmp_path / "ingest"), "--file", str(tmp_path / name)]
    )
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "ingest" / "manifest.json").exists()


def test_cli_stream_ingest_normalize_and_tamper_check(tmp_path):
    ingest = tmp_path / "ingest"
    runner = CliRunner()
    result = runner.invoke(
        cloud_cli,
        [
            "ingest",
            "--out",
            str(ingest),
            "--file",
            str(STREAM / "linkedin_jobs.csv"),
            "--file",
            str(FIXTURES / "brightdata_2025_layout.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "normalized"
    result = runner.invoke(cloud_cli, ["normalize", "--ingest-dir", str(ingest), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = (out / "postings.jsonl").read_text().splitlines()
    quarantine = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    report = json.loads((out / "report.json").read_text())
    assert len(lines) == report["kept"] and len(quarantine) == report["quarantined"]
    assert all(q["reason"] for q in quarantine)
    # A raw batch edited after ingest is refused, and the last good output stays untouched.
    (ingest / "raw" / "linkedin_jobs.csv").write_text("job_link,platform\n")
    result = runner.invoke(cloud_cli, ["normalize", "--ingest-dir", str(ingest), "--out", str(out)])
    assert result.exit_code == 2 and "sha256 differs" in result.output
    assert len((out / "postings.jsonl").read_text().splitlines()) == len(lines)


def test_cli_all_records_unusable_writes_no_postings(tmp_path):
    drop = tmp_path / "broken.json"
    drop.write_text(
        json.dumps(
            [
                {"job_posting_id": "1", "job_title": "", "job_summary": "x"},
                {"job_posting_id": "2", "job_title": "Data Scientist"},
            ]
        )
    )
    runner = CliRunner()
    assert runner.invoke(cloud_cli, ["ingest", "--out", str(tmp_path / "i"), "--file", str(drop)]).exit_code == 0
    result = runner.invoke(cloud_cli, ["normalize", "--ingest-dir", str(tmp_path / "i"), "--out", str(tmp_path / "n")])
    assert result.exit_code == 2 and "no usable postings" in result.output
    assert not (tmp_path / "n" / "postings.jsonl").exists()
    assert len((tmp_path / "n" / "quarantine.jsonl").read_text().splitlines()) == 2


def test_language_guess():
    english = "We are looking for a data scientist who can work with the product team and own the analysis of " * 3
    french = (
        "Nous recherchons un data scientist pour rejoindre notre équipe et vous serez responsable de la qualité des données "
        * 3
    )
    assert guess_language(english).language == "en"
    assert guess_language(french).language == "fr"
    assert guess_language("Python SQL Spark").language == "und" and guess_language("Python SQL").is_english


def test_canonical_url():
    assert (
        canonical_url("https://uk.linkedin.com/jobs/view/data-engineer-at-x-4073552631?lg=en")
        == canonical_url("https://www.linkedin.com/jobs/view/4073552631")
        == "linkedin.com/jobs/view/4073552631"
    )
    assert canonical_url("https://www.indeed.com/viewjob?jk=abc&from=serp") == "indeed.com/viewjob?jk=abc"
    assert (
        canonical_url("https://www.adzuna.co.uk/jobs/land/ad/575?se=x&utm_source=y") == "adzuna.co.uk/jobs/land/ad/575"
    )
