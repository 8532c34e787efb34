"""`careeredge tui`: classify postings, read the history and the status on the Pi's own screen.

Design choice: the TUI runs the model and the store **in-process** (the same `device.daemon.Daemon`
service the web server uses, with `source="tui"`), rather than calling the daemon's HTTP API.

Why: the TUI is the console of an appliance, and it must work exactly when the web side does not:
first boot before the daemon is enabled, a daemon stopped for maintenance, a wrong port or admin
token in the config. In-process it needs nothing but the bundle and the DB file. The costs are
acceptable on a Pi 5: a second copy of the INT8 model in memory while the TUI is open, and a
second writer on the SQLite file, which the store is built for (WAL, busy timeout, one short
transaction per prediction), so predictions from the TUI, the web and the CLI all land in one
history. The model loads in a background worker, so the screen is usable at once.
"""

from __future__ import annotations

from pathlib import Path

import click
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Static, TabbedContent, TabPane, TextArea

from device.config import Config

HISTORY_ROWS = 200
FILTERS = (None, 0, 1)  # all, Software Engineering, Data Science


def _bar(p: float, width: int = 30) -> str:
    filled = round(p * width)
    return "█" * filled + "░" * (width - filled)


def render_result(result) -> str:
    """Result panel text (Textual markup escaped where user data goes in)."""
    from rich.markup import escape

    p = result.prediction
    lines = [
        f"[b]{escape(p.label_name)}[/b]  {p.confidence:.0%}",
        f"SWE {_bar(p.probabilities[0])} {p.probabilities[0]:.0%}",
        f"DS  {_bar(p.probabilities[1])} {p.probabilities[1]:.0%}",
        f"[dim]{escape(p.model_version)} · {p.latency_ms:.1f} ms · "
        + ("saved to history" if result.stored else f"NOT saved: {escape(result.store_error or '')}")
        + "[/dim]",
    ]
    lines += [f"[yellow]{escape(note)}[/yellow]" for note in result.notes]
    if result.driving_terms:
        lines.append("")
        lines.append("[b]What drove it[/b]  " + ", ".join(f"{escape(t)} ({w:+.3f})" for t, w in result.driving_terms))
    if result.advice is not None:
        lines.append("")
        lines.append("[b]Career advice[/b]")
        lines += [f"• {escape(line)}" for line in result.advice.lines]
    return "\n".join(lines)


class CareerEdgeApp(App):
    """Tabs: Classify (text area + result panel), History (DataTable from the store), Status."""

    CSS_PATH = "app.tcss"
    TITLE = "careeredge"
    SUB_TITLE = "offline job-posting classifier"
    BINDINGS = [
        Binding("ctrl+r", "classify", "Classify", priority=True),
        Binding("ctrl+l", "clear", "Clear", priority=True),
        Binding("f2", "show_tab('classify')", "Classify tab"),
        Binding("f3", "show_tab('history')", "History"),
        Binding("f4", "show_tab('status')", "Status"),
        Binding("f5", "refresh", "Refresh"),
        Binding("ctrl+f", "cycle_filter", "Filter history", priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, config: Config, daemon=None, pinned_bundle: bool = False):
        super().__init__()
        self.config = config
        self.daemon = daemon
        self.pinned_bundle = pinned_bundle
        self.history_filter: int | None = None
        self.last_result = None

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="classify"):
            with TabPane("Classify", id="classify"):
                with Horizontal(id="classify-row"):
                    with Vertical(id="input-pane"):
                        yield Label("Job description (Ctrl+R to classify)")
                        yield TextArea(
                            id="posting",
                            soft_wrap=True,
                            show_line_numbers=False,
                            placeholder="Paste a job posting here",
                        )
                        yield Label("Your skills (comma-separated)")
                        yield Input(
                            value=", ".join(self.config.profile.skills), id="skills", placeholder="Python, SQL, Docker"
                        )
                        yield Button("Classify", id="classify-button", variant="primary")
                    with VerticalScroll(id="result-pane"):
                        yield Static("Loading the model…", id="result")
            with TabPane("History", id="history"):
                yield Label("", id="history-title")
                yield DataTable(id="history-table", zebra_stripes=True, cursor_type="row")
            with TabPane("Status", id="status"):
                with VerticalScroll():
                    yield Static("", id="status-text")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#history-table", DataTable)
        table.add_columns("When (UTC)", "Class", "Conf.", "Posting", "From")
        self.query_one("#posting", TextArea).focus()
        if self.daemon is None:
            self.load_daemon()
        else:
            self._daemon_ready()

    @work(thread=True, exclusive=True, group="load")
    def load_daemon(self) -> None:
        from device.daemon import Daemon
        from device.sync.slots import resolve_bundle

        daemon = Daemon(self.config, bundle_dir=resolve_bundle(self.config, pinned=self.pinned_bundle))
        daemon.start_skew_monitor()
        self.call_from_thread(self._set_daemon, daemon)

    def _set_daemon(self, daemon) -> None:
        self.daemon = daemon
        self._daemon_ready()

    def _daemon_ready(self) -> None:
        result = self.query_one("#result", Static)
        if self.daemon.degraded:
            result.update(
                f"[b red]Degraded: no model loaded.[/b red]\n{self._escape(self.daemon.model_error)}\n\n"
                f"How to fix: {self._escape(self.daemon.model_fix)}"
            )
        else:
            result.update(
                f"Model {self._escape(self.daemon.model_info()['version'])} ready. Paste a posting and press Ctrl+R."
            )
        self.refresh_history()
        self.refresh_status()

    @staticmethod
    def _escape(text) -> str:
        from rich.markup import escape

        return escape("" if text is None else str(text))

    # --- actions -------------------------------------------------------------------------------
    def action_classify(self) -> None:
        text = self.query_one("#posting", TextArea).text
        skills = self.query_one("#skills", Input).value
        if self.daemon is None:
            self.notify("The model is still loading.", severity="warning")
            return
        self.query_one("#result", Static).update("Classifying…")
        self.classify_in_background(text, skills)

    @on(Button.Pressed, "#classify-button")
    def _classify_pressed(self) -> None:
        self.action_classify()

    @work(thread=True, exclusive=True, group="classify")
    def classify_in_background(self, text: str, skills: str) -> None:
        from device.daemon import ModelUnavailable
        from shared.errors import UserError

        try:
            result = self.daemon.classify(text, source="tui", explain=True, with_advice=True, profile_skills=[skills])
        except UserError as exc:
            self.call_from_thread(self._show_error, exc.format_message())
            return
        except ModelUnavailable as exc:
            self.call_from_thread(self._show_error, f"No model loaded: {exc.reason}\n{exc.fix}")
            return
        self.call_from_thread(self._show_result, result)

    def _show_error(self, message: str) -> None:
        self.query_one("#result", Static).update(f"[b red]{self._escape(message)}[/b red]")

    def _show_result(self, result) -> None:
        self.last_result = result
        self.query_one("#result", Static).update(render_result(result))
        self.refresh_history()
        self.refresh_status()

    def action_clear(self) -> None:
        self.query_one("#posting", TextArea).text = ""
        self.query_one("#posting", TextArea).focus()

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        if tab == "history":
            self.query_one("#history-table", DataTable).focus()

    def action_refresh(self) -> None:
        self.refresh_history()
        self.refresh_status()

    def action_cycle_filter(self) -> None:
        self.history_filter = FILTERS[(FILTERS.index(self.history_filter) + 1) % len(FILTERS)]
        self.action_show_tab("history")
        self.refresh_history()

    # --- views ---------------------------------------------------------------------------------
    def refresh_history(self) -> None:
        from shared.labels import LABEL_NAMES

        table = self.query_one("#history-table", DataTable)
        table.clear()
        store = self.daemon.store if self.daemon else None
        name = "all" if self.history_filter is None else LABEL_NAMES[self.history_filter]
        if store is None:
            self.query_one("#history-title", Label).update("History unavailable: no prediction store")
            return
        rows = store.recent(limit=HISTORY_ROWS, label=self.history_filter)
        total = store.count(self.history_filter)
        self.query_one("#history-title", Label).update(
            f"{total} predictions · filter: {name} (Ctrl+F) · newest {len(rows)} shown"
        )
        for row in rows:
            confidence = row["p1"] if row["label"] == 1 else row["p0"]
            table.add_row(
                row["created_at"][:19].replace("T", " "),
                row["label_name"],
                f"{confidence:.0%}",
                row["snippet"][:80],
                row["source"],
                key=row["uuid"],
            )

    def refresh_status(self) -> None:
        if self.daemon is None:
            return
        info = self.daemon.status()
        model, db = info["model"], info["database"]
        lines = ["[b]Model[/b]"]
        if model["loaded"]:
            lines += [f"  version   {self._escape(model['version'])}", f"  backend   {model['backend']}"]
        else:
            lines += [
                f"  [red]not loaded[/red]: {self._escape(model['error'])}",
                f"  fix: {self._escape(model['fix'])}",
            ]
        lines += [f"  bundle    {self._escape(model['bundle'])}", "", "[b]Database[/b]"]
        if db["ok"]:
            lines += [
                f"  file      {self._escape(db['path'])}",
                f"  size      {db['size_bytes'] / 1048576:.1f} MB",
                f"  rows      {db['rows']} ({db['unsynced']} not yet synced)",
                f"  schema    v{db['schema_version']}, privacy {db['privacy']}",
            ]
        else:
            lines.append(f"  [red]{self._escape(db.get('error'))}[/red]")
        sync = info.get("sync") or {}
        lines += ["", "[b]Sync[/b]"] + [f"  {key:<22}{self._escape(value)}" for key, value in sync.items()]
        skew = info.get("monitoring")
        if skew:
            alarm = skew.get("state") == "alert"
            message = self._escape(skew.get("message", ""))
            lines += ["", "[b]Skew vs 2025[/b]", f"  [red]ALARM[/red]: {message}" if alarm else f"  {message}"]
        shadow = info.get("shadow")
        if shadow:
            lines.append(
                f"  shadow {self._escape(shadow['name'])}: {shadow['scored']} scored, {shadow['dropped']} dropped"
            )
        lines += ["", f"[b]Advice data[/b]\n  {self._escape(info['advice_source']['description'])}"]
        self.query_one("#status-text", Static).update("\n".join(lines))

    def on_unmount(self) -> None:
        if self.daemon is not None:
            self.daemon.close()


@click.command("tui")
@click.option("--model", "bundle", type=click.Path(path_type=Path), default=None, help="Model bundle directory.")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Prediction database [config [store] path].",
)
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Config TOML."
)
def tui(bundle: Path | None, db_path: Path | None, config_path: Path | None) -> None:
    """Terminal UI: classify a posting, see advice, browse the history and the status."""
    from device.config import load_config

    config = load_config(config_path)
    config.override("model", bundle=bundle)
    config.override("store", path=db_path)
    CareerEdgeApp(config, pinned_bundle=bundle is not None).run()
