"""Reports of a real run folder: every figure and table, LaTeX well formed, numbers that agree everywhere,
an offline page that headless Chromium renders without a broken image, provenance, a copied folder."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from report_runs import read_json, write_latency_validation, write_trained

from common.hashing import stable_hash
from complete_pipeline import main
from pipeline.survivors import select_survivors, write_survivors
from reports.generate import FIGURES, generate_reports

SEARCH = ["--nas-population", "4", "--nas-generations", "1", "--proxy-epochs", "1", "--max-latency-ms", "0.5",
          "--backend", "inline", "--jobs", "1", "--no-progress"]  # fmt: skip
TABLES = ("model_comparison.csv", "model_comparison.tex", "nas_history.csv", "nas_history.json", "all_results.json")


def _compare_run(source: Path, target: Path, strategy: str, seed: int, scale: float) -> Path:
    """Another run of the same problem: the search files with another strategy/seed and a scaled hypervolume."""
    shutil.copytree(source / "nas", target / "nas")
    shutil.copy(source / "config.json", target / "config.json")
    search = read_json(target / "nas" / "search.json")
    search["settings"]["config"] |= {"strategy": strategy, "seed": seed}
    search["config"] |= {"strategy": strategy, "seed": seed}
    (target / "nas" / "search.json").write_text(__import__("json").dumps(search))
    history = pd.read_csv(target / "nas" / "history.csv")
    history["hypervolume"] *= scale
    history.to_csv(target / "nas" / "history.csv", index=False)
    return target


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A real search (CLI) plus baselines, survivors, quantization and a latency validation, moved to another
    folder before reporting (a copied run must need nothing of where it was made), and two compare runs."""
    made = tmp_path_factory.mktemp("made") / "run"
    config = made.parent / "small.yaml"
    config.write_text("data:\n  synthetic: {clips_per_class: 12, n_classes: 8}\n")  # fewer clips: a faster test
    assert main(["--mode", "nas", "--config", str(config), "--out", str(made), *SEARCH]) == 0
    survivors, rows = select_survivors(made, 3)
    write_survivors(made, rows)
    models = [{"name": "tiny", "kind": "baseline", "spec": "c16k3s1-c32k3s2r2-c64k3s2-h128d20", "accuracy": 0.8},
              {"name": "dscnn", "kind": "baseline", "spec": "c64k4x10s2-ds64k3s1-h0d20", "accuracy": 0.7}]  # fmt: skip
    models += [{"name": s.name, "kind": "nas", "spec": s.spec, "accuracy": 0.6 + 0.05 * i,
                "proxy": s.proxy.get("accuracy")} for i, s in enumerate(survivors)]  # fmt: skip
    if survivors:
        models.append({"name": f"{survivors[0].name}-kd", "kind": "distilled", "spec": survivors[0].spec,
                       "accuracy": 0.66})  # fmt: skip
    write_trained(made, models, linear=0.75)
    write_latency_validation(made)
    moved = tmp_path_factory.mktemp("copied") / "fsdd-run"
    shutil.copytree(made, moved)
    shutil.rmtree(made)
    base = tmp_path_factory.mktemp("compare")
    compare = [_compare_run(moved, base / "random-0", "random", 0, 0.8),
               _compare_run(moved, base / "random-1", "random", 1, 0.7),
               _compare_run(moved, base / "nsga2-1", "nsga2", 1, 1.1)]  # fmt: skip
    result = generate_reports(moved, compare=compare)
    return moved, result, models


def test_every_figure_and_table_is_written(report):
    run, result, _ = report
    assert result.out_dir == run / "reports"
    assert set(result.figures) == set(FIGURES), result.notes
    for name, paths in result.figures.items():
        assert [p.suffix for p in paths] == [".pdf", ".png"]
        assert paths[0].read_bytes().startswith(b"%PDF")
        with Image.open(paths[1]) as image:
            assert round(image.info["dpi"][0]) == 300, name
            assert image.width >= 1200, name
    assert set(result.tables) == set(TABLES)
    assert all(p.is_file() and p.stat().st_size > 0 for p in result.tables.values())
    assert result.html == run / "reports" / "index.html"
    assert not [n for n in result.notes if "not drawn" in n], result.notes
    assert result.missing == []


def test_latex_table_is_well_formed_booktabs(report):
    _, result, models = report
    tex = result.tables["model_comparison.tex"].read_text()
    assert tex.count("\\toprule") == tex.count("\\bottomrule") == 1
    assert tex.index("\\toprule") < tex.index("\\midrule") < tex.index("\\bottomrule")
    unescaped = re.sub(r"\\[{}]", "", tex)
    assert unescaped.count("{") == unescaped.count("}")
    spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", tex).group(1)
    body = tex[tex.index("\\toprule") : tex.index("\\bottomrule")]
    rows = [line for line in body.splitlines() if line.endswith("\\\\")]
    assert len(rows) == 1 + len(pd.read_csv(result.tables["model_comparison.csv"]))
    for line in rows:
        assert len(re.split(r"(?<!\\)&", line)) == len(spec), line
    assert "\\caption{" in tex and "\\label{tab:model_comparison}" in tex
    assert "\\textbf{" in tex
    for m in models:  # specs are in the CSV, not in the typeset table
        assert m["spec"] not in tex
    assert "int8\\_static" in tex and "int8_static" not in tex.replace("int8\\_static", "")


def _latex_cells(tex: str) -> list[list[str]]:
    body = tex[tex.index("\\midrule") : tex.index("\\bottomrule")]
    rows = []
    for line in body.splitlines():
        if line.endswith("\\\\"):
            cells = [c.strip() for c in re.split(r"(?<!\\)&", line.removesuffix("\\\\"))]
            rows.append([re.sub(r"\\textbf\{(.*)\}", r"\1", c).replace("\\textsuperscript{\\dag}", "") for c in cells])
    return rows


class _Tables(HTMLParser):
    """Cells of every <table id=...> in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_numbers_agree_in_csv_latex_json_and_html(report):
    _, result, _ = report
    csv = pd.read_csv(result.tables["model_comparison.csv"])
    rows = read_json(result.tables["all_results.json"])["model_comparison"]["rows"]
    assert len(rows) == len(csv)
    for record, (_, row) in zip(rows, csv.iterrows(), strict=True):
        for column in ("test_accuracy_pct", "test_macro_f1_pct", "size_kb", "latency_ms", "params", "macs_m"):
            if pd.isna(row[column]):
                assert record[column] is None
            else:
                assert record[column] == pytest.approx(row[column], rel=1e-12), column
    latex = _latex_cells(result.tables["model_comparison.tex"].read_text())
    assert len(latex) == len(csv)
    for cells, (_, row) in zip(latex, csv.iterrows(), strict=True):
        assert cells[1] == row["variant"].replace("_", "\\_")
        assert float(cells[2].split("\\,")[0]) == pytest.approx(row["test_accuracy_pct"], abs=0.051)
        assert float(cells[3]) == pytest.approx(row["test_macro_f1_pct"], abs=0.051)
        if pd.isna(row["latency_ms"]):  # the linear reference: no ONNX file, no latency
            assert row["kind"] == "reference" and cells[7] == "--"
        else:
            assert float(cells[7]) == pytest.approx(row["latency_ms"], rel=0.006)
        if cells[4]:
            assert float(cells[4]) == pytest.approx(row["params"] / 1000, abs=0.051)
    parser = _Tables()
    parser.feed(result.html.read_text(encoding="utf-8"))
    table = parser.tables["table-model_comparison"]
    header, body = table[0], table[1:]
    assert header == list(csv.columns)
    for cells, (_, row) in zip(body, csv.iterrows(), strict=True):
        shown = dict(zip(header, cells, strict=True))
        assert shown["model"] == row["model"] and shown["variant"] == row["variant"]
        assert float(shown["test_accuracy_pct"]) == pytest.approx(row["test_accuracy_pct"], abs=0.006)
        if not pd.isna(row["latency_ms"]):
            assert float(shown["latency_ms"]) == pytest.approx(row["latency_ms"], rel=6e-4)
        assert float(shown["size_kb"]) == pytest.approx(row["size_kb"], abs=0.006)
    history = pd.read_csv(result.tables["nas_history.csv"])
    assert list(parser.tables["table-nas_history"][0]) == list(history.columns)
    assert read_json(result.tables["nas_history.json"])["rows"][0]["hypervolume"] == pytest.approx(
        history["hypervolume"].iloc[0]
    )


def test_table_columns_say_what_they_are(report):
    _, result, _ = report
    legend = read_json(result.tables["all_results.json"])["model_comparison"]["columns"]
    csv = pd.read_csv(result.tables["model_comparison.csv"])
    assert set(csv.columns) <= set(legend)
    assert "proxy" in legend["proxy_val_accuracy_pct"] and "test" in legend["test_accuracy_pct"]
    assert "AMD EPYC" in legend["latency_ms"]
    reference = csv["kind"] == "reference"
    assert csv.loc[reference, "latency_source"].tolist() == ["none: the linear reference is not exported"]
    csv = csv[~reference]
    measured = csv[csv["latency_source"].str.startswith("measured")]
    assert len(measured) == len(csv) and (measured["latency_source"].str.contains("AMD EPYC")).all()
    assert (csv.loc[csv["variant"] == "fp32", "table_device"] == "epyc-avx512-2c_ort_fp32_t1").all()
    page = result.html.read_text(encoding="utf-8")
    for column in csv.columns:
        assert f"<dt>{column}</dt>" in page
    tex = result.tables["model_comparison.tex"].read_text()
    assert "measured in ONNX Runtime on AMD EPYC" in tex and "test clips" in tex


def test_provenance(report):
    run, result, _ = report
    data = read_json(result.tables["all_results.json"])
    prov = data["provenance"]
    assert prov["report"]["tool_version"] == importlib.metadata.version("edge-audio-nas")
    assert prov["report"]["packages"]["pandas"] == pd.__version__
    assert prov["run"]["config_hash"] == stable_hash(read_json(run / "config.json"))
    assert prov["run"]["data"]["dataset"] == "synthetic" and prov["run"]["data"]["split_sizes"]["test"] > 0
    assert prov["run"]["seeds"]["search_seed"] == 0
    assert prov["run"]["times"]["search_wall_s"] > 0
    tables = {t["name"]: t for t in prov["latency_tables"]}
    assert tables["epyc-avx512-2c_ort_fp32_t1"]["device"]["cpu_model"]
    assert tables["epyc-avx512-2c_ort_fp32_t1"]["fingerprint_in_run"]
    assert {c["strategy"] for c in prov["compared_runs"]} == {"random", "nsga2"}
    assert data["search"]["pareto_set"] and data["search"]["hv_reference"]
    assert data["proxy_fidelity"]["n"] >= 1


def test_nothing_of_the_machine_that_made_the_run_is_needed(report):
    run, result, _ = report
    made = str(run.parent.parent)  # the reports name files by name, never by where this machine keeps them
    for path in [*result.tables.values(), result.html]:
        text = path.read_text(encoding="utf-8")
        assert made not in text, path.name


def test_hypervolume_compares_strategies_with_a_band_over_seeds(report):
    _, result, _ = report
    by_strategy = pd.DataFrame(read_json(result.tables["all_results.json"])["hypervolume_by_strategy"])
    assert set(by_strategy["strategy"]) == {"nsga2", "random"}
    assert (by_strategy["n_runs"] == 2).all()
    assert (by_strategy.loc[by_strategy["strategy"] == "nsga2", "std"] > 0).any()
    history = pd.read_csv(result.tables["nas_history.csv"])
    assert history["run"].nunique() == 4


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


PROBE = """<script>
window.addEventListener('error', e => document.body.setAttribute('data-errors', (+document.body.dataset.errors||0)+1));
window.addEventListener('load', () => {
  const images = [...document.images];
  document.body.setAttribute('data-images', images.length);
  document.body.setAttribute('data-broken', images.filter(i => !(i.complete && i.naturalWidth > 0)).length);
  document.body.setAttribute('data-fetched', performance.getEntriesByType('resource').length);
});
</script></body>"""


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed (apt-get install chromium)")
def test_html_page_renders_offline_in_headless_chromium(report, tmp_path):
    _, result, _ = report
    page = result.html.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']https?://""", page), "the page must not fetch anything"
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE), encoding="utf-8")
    done = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", done.stdout).group(1)
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', body))
    assert attrs.get("images") == str(len(result.figures)), attrs
    assert attrs.get("broken") == "0" and attrs.get("fetched") == "0", attrs
    assert "errors" not in attrs, attrs
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
