"""Every database type on a real node, loaded in real containers, compared with the source.

One node (its own organization and collaboration on the session server) offers: csv, parquet
and excel files, an SQLite file, a PostgreSQL database of the local cluster (twice: password
in the URL, and as ``password``), a SPARQL 1.1 endpoint (an ``oxigraph`` process started
here), an ``other`` URI, and a PostgreSQL and a SPARQL server that do not answer. Algorithms
run with v6flow's ``@data`` (``v6flow-test/basic``) and with the unmodified
vantage6-algorithm-tools 4.15.2 ``@data`` (``v6flow-test/v6compat``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from sqlalchemy import create_engine

from tests.fixtures.docker import ALGORITHMS_DIR, TEST_LABEL, V6COMPAT_REQUIREMENTS
from tests.fixtures.federation import Federation, create_federation, shutdown_federation
from tests.fixtures.server import ServerProcess, free_port
from v6flow import images as v6images
from v6flow.wire import result_from_wire

pytestmark = [pytest.mark.docker, pytest.mark.postgres, pytest.mark.slow]

SQL_QUERY = "SELECT id, age, bmi, city FROM patients WHERE age > 40 ORDER BY id"
SPARQL_QUERY = """PREFIX ex: <http://example.org/>
SELECT ?id ?age ?bmi ?city WHERE {
  ?p ex:id ?id ; ex:age ?age ; ex:city ?city .
  OPTIONAL { ?p ex:bmi ?bmi }
} ORDER BY ?id"""
OTHER_URI = "s3://bucket/cohort/?region=eu&version=3"


def _patients(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    bmi = rng.normal(26, 4, rows).round(2)
    bmi[::5] = np.nan
    return pd.DataFrame({"id": np.arange(1, rows + 1), "age": rng.integers(18, 90, rows),
                         "bmi": bmi, "city": rng.choice(["Utrecht", "Gent", "Köln"], rows)})


def _split(df: pd.DataFrame) -> dict[str, Any]:
    """What the ``loaded``/``frame`` test algorithms return for a DataFrame."""
    return {"frame": json.loads(df.to_json(orient="split", index=False)),
            "dtypes": {str(name): str(dtype) for name, dtype in df.dtypes.items()}}


# --- sources ------------------------------------------------------------------------------
@dataclass
class PgReader:
    """A PostgreSQL database with table ``patients`` and a read-only role."""

    owner_url: str
    role: str
    password: str
    database: str

    @property
    def url(self) -> str:
        """The reader's URL, with its password (percent-encoded)."""
        return (f"postgresql://{self.role}:{quote(self.password, safe='')}@127.0.0.1:5432/"
                f"{self.database}")


@dataclass
class Sources:
    """The files and servers the node offers, and how to read them directly."""

    csv: Path
    parquet: Path
    excel: Path
    sqlite: Path
    ttl: Path
    pg: PgReader
    sparql_url: str


def _psql(sql: str, database: str = "postgres") -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-d", database, "-v",
                    "ON_ERROR_STOP=1", "-qtAc", sql], check=True, capture_output=True,
                   timeout=60)


@pytest.fixture(scope="module")
def pg_reader(postgres_databases: Callable[[], str]) -> Iterator[PgReader]:
    """A fresh database with table ``patients`` and a read-only role with its own password."""
    owner_url = postgres_databases()
    name = owner_url.rsplit("/", 1)[1]
    reader = PgReader(owner_url=owner_url, role=f"reader_{name[-12:]}", database=name,
                      password=f"pw-{secrets.token_hex(8)}:@/%")  # characters URLs encode
    _psql(f"CREATE ROLE {reader.role} LOGIN PASSWORD '{reader.password}'")
    engine = create_engine(owner_url)
    _patients(40, seed=7).to_sql("patients", engine, index=False)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"GRANT SELECT ON patients TO {reader.role}")
    engine.dispose()
    yield reader
    _psql(f"DROP OWNED BY {reader.role}", database=name)
    _psql(f"DROP ROLE {reader.role}")


def _turtle(df: pd.DataFrame) -> str:
    lines = ["@prefix ex: <http://example.org/> ."]
    for row in df.to_dict("records"):
        bmi = "" if row["bmi"] != row["bmi"] else f" ; ex:bmi {row['bmi']}"  # NaN != NaN
        lines.append(f'ex:p{row["id"]} ex:id {row["id"]} ; ex:age {row["age"]} ; '
                     f'ex:city "{row["city"]}"{bmi} .')
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def sparql_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An oxigraph SPARQL 1.1 server on this host's loopback serving a small graph:
    ``(endpoint URL with this host's name, the Turtle file)``."""
    oxigraph = shutil.which("oxigraph") or str(Path(sys.executable).parent / "oxigraph")
    folder = tmp_path_factory.mktemp("sparql")
    ttl = folder / "patients.ttl"
    ttl.write_text(_turtle(_patients(30, seed=11)), encoding="utf-8")
    subprocess.run([oxigraph, "load", "--location", str(folder / "store"), "--file", str(ttl)],
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    log = (folder / "oxigraph.log").open("wb")
    proc = subprocess.Popen([oxigraph, "serve-read-only", "--location", str(folder / "store"),
                             "--bind", f"127.0.0.1:{port}"], stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/query",
                         params={"query": "ASK {}"}).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, "oxigraph did not start"
        time.sleep(0.1)
    # This host's own name (it resolves to loopback here): the container keeps the name in
    # its URI and the sidecar's /etc/hosts maps it to the forward.
    name = socket.gethostname()
    host = name if socket.gethostbyname(name).startswith("127.") else "localhost"
    yield f"http://{host}:{port}/query", ttl
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory, pg_reader: PgReader,
            sparql_endpoint: tuple[str, Path]) -> Sources:
    """csv, parquet, excel (two sheets) and SQLite files, the PostgreSQL and SPARQL servers."""
    folder = tmp_path_factory.mktemp("sources")
    folder.chmod(0o755)
    df = _patients(60, seed=3)
    paths = {kind: folder / f"patients.{kind}" for kind in ("csv", "parquet", "xlsx", "sqlite")}
    df.to_csv(paths["csv"], index=False)
    df.to_parquet(paths["parquet"], index=False)
    with pd.ExcelWriter(paths["xlsx"]) as writer:
        df.to_excel(writer, sheet_name="patients", index=False)
        _patients(9, seed=5).to_excel(writer, sheet_name="visits", index=False)
    engine = create_engine(f"sqlite:///{paths['sqlite']}")
    df.to_sql("patients", engine, index=False)
    engine.dispose()
    for path in paths.values():
        path.chmod(0o644)
    return Sources(csv=paths["csv"], parquet=paths["parquet"], excel=paths["xlsx"],
                   sqlite=paths["sqlite"], ttl=sparql_endpoint[1], pg=pg_reader,
                   sparql_url=sparql_endpoint[0])


@dataclass
class Images:
    """Images of this checkout under tags of this module only."""

    base: str
    basic: str
    v6compat: str


@pytest.fixture(scope="module")
def images(docker_client: Any) -> Iterator[Images]:
    """The base (sidecar) and the two algorithm images, pinned under tags of this module.

    The shared tags (``v6flow/base:0.1.0``, ``v6flow-test/basic:latest``) are rebuilt by any
    test session whose checkout differs; these tests need this checkout's sidecar and loaders
    for their whole duration.
    """
    suffix = secrets.token_hex(4)
    pinned = Images(base=f"v6flow-test/dbnode-base:{suffix}",
                    basic=f"v6flow-test/dbnode-basic:{suffix}",
                    v6compat=f"v6flow-test/dbnode-v6compat:{suffix}")
    for _attempt in range(3):
        base = v6images.ensure_base_image(client=docker_client)
        repository, tag = pinned.base.split(":")
        docker_client.images.get(base).tag(repository, tag)
        if v6images.base_image_is_current(docker_client, pinned.base):
            break
    else:
        pytest.fail("the base image kept being rebuilt from another checkout")
    v6images.build_algorithm_image(ALGORITHMS_DIR / "basic", pinned.basic, base=pinned.base,
                                   client=docker_client, labels={TEST_LABEL: "1"})
    v6images.build_algorithm_image(ALGORITHMS_DIR / "v6compat", pinned.v6compat,
                                   base=pinned.base, client=docker_client,
                                   labels={TEST_LABEL: "1"},
                                   requirements=V6COMPAT_REQUIREMENTS)
    yield pinned
    for tag in (pinned.v6compat, pinned.basic, pinned.base):
        with contextlib.suppress(Exception):
            docker_client.images.remove(tag)


@pytest.fixture(scope="module")
def data_node(server: ServerProcess, images: Images, sources: Sources,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """One node with a database of every type (see the module docstring)."""
    fed = create_federation(server_url=server.url, root_password=server.root_password,
                            directory=tmp_path_factory.mktemp("dbnode"), base_image=images.base,
                            test_image=images.basic, sizes=(20,))
    (node,) = fed.nodes
    assert fed.stop_node(node) == 0
    pg = sources.pg
    config = yaml.safe_load(node.config_path.read_text())
    config["databases"] = [
        {"label": "default", "type": "csv", "uri": str(sources.csv)},
        {"label": "pq", "type": "parquet", "uri": str(sources.parquet)},
        {"label": "xl", "type": "excel", "uri": str(sources.excel)},
        {"label": "lite", "type": "sql", "uri": str(sources.sqlite)},
        {"label": "pg", "type": "sql", "uri": pg.url},
        {"label": "pg2", "type": "sql", "password": pg.password,
         "uri": f"postgresql+psycopg://{pg.role}@localhost:5432/{pg.database}"},
        {"label": "rdf", "type": "sparql", "uri": sources.sparql_url},
        {"label": "ext", "type": "other", "uri": OTHER_URI},
        {"label": "deadsql", "type": "sql", "password": pg.password,
         "uri": f"postgresql://{pg.role}@127.0.0.1:{free_port()}/{pg.database}"},
        {"label": "deadrdf", "type": "sparql", "uri": f"http://127.0.0.1:{free_port()}/query"},
    ]
    node.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    fed.extra["v6compat_image"] = images.v6compat
    fed.start_node(node)
    fed.wait_online(node)
    yield fed
    shutdown_federation(fed)


def _run(fed: Federation, method: str, database: dict[str, Any], *, image: str | None = None,
         **kwargs: Any) -> tuple[dict[str, Any], Any]:
    """Run ``method`` on the node with one requested database; ``(run, result or None)``."""
    task = fed.create_task(method, image=image, kwargs=kwargs, databases=[database])
    (run,) = fed.wait_for_runs(task["id"], timeout=120)
    if run["status"] != "completed":
        return run, None
    (item,) = fed.results(task["id"])
    return run, result_from_wire(item["result"])


def _loaded(fed: Federation, database: dict[str, Any]) -> Any:
    run, result = _run(fed, "loaded", database)
    assert run["status"] == "completed", run["log"]
    return result


# --- each type, v6flow @data ---------------------------------------------------------------
def test_csv_loads_like_pandas(data_node: Federation, sources: Sources) -> None:
    """A csv database arrives as the DataFrame pandas reads from the file."""
    assert _loaded(data_node, {"label": "default"}) == _split(pd.read_csv(sources.csv))


def test_parquet_loads_like_pandas(data_node: Federation, sources: Sources) -> None:
    """A parquet database arrives as the DataFrame pandas reads from the file."""
    assert _loaded(data_node, {"label": "pq"}) == _split(pd.read_parquet(sources.parquet))


def test_excel_loads_the_first_sheet_or_the_named_one(data_node: Federation,
                                                      sources: Sources) -> None:
    """An excel database gives its first sheet, or the task's sheet_name."""
    assert _loaded(data_node, {"label": "xl"}) == _split(pd.read_excel(sources.excel))
    assert _loaded(data_node, {"label": "xl", "sheet_name": "visits"}) == _split(
        pd.read_excel(sources.excel, sheet_name="visits"))


def test_sqlite_file_runs_the_task_query(data_node: Federation, sources: Sources) -> None:
    """A sql database that is an SQLite file gives the result of the task's query."""
    engine = create_engine(f"sqlite:///{sources.sqlite}")
    expected = pd.read_sql_query(SQL_QUERY, engine)
    engine.dispose()
    assert _loaded(data_node, {"label": "lite", "query": SQL_QUERY}) == _split(expected)


def test_postgresql_runs_the_task_query(data_node: Federation, sources: Sources) -> None:
    """A sql database on PostgreSQL (password in the URL, or as `password`) gives what the
    database answers to the task's query."""
    engine = create_engine(sources.pg.owner_url)
    expected = _split(pd.read_sql_query(SQL_QUERY, engine))
    engine.dispose()
    assert _loaded(data_node, {"label": "pg", "query": SQL_QUERY}) == expected
    assert _loaded(data_node, {"label": "pg2", "query": SQL_QUERY}) == expected


def _rdflib_frame(ttl: Path) -> pd.DataFrame:
    import rdflib

    graph = rdflib.Graph().parse(ttl)
    result = graph.query(SPARQL_QUERY)
    names = [str(v) for v in result.vars or []]
    rows: list[list[Any]] = []
    for row in result:
        terms: Any = row
        rows.append([None if terms[name] is None else terms[name].toPython()
                     for name in names])
    return pd.DataFrame.from_records(rows, columns=names, coerce_float=True)


def test_sparql_runs_the_task_query(data_node: Federation, sources: Sources) -> None:
    """A sparql database gives the endpoint's answer to the task's query, typed like
    rdflib reading the same graph from its file."""
    result = _loaded(data_node, {"label": "rdf", "query": SPARQL_QUERY})
    assert result == _split(_rdflib_frame(sources.ttl))
    assert result["dtypes"]["age"] == "int64" and result["dtypes"]["bmi"] == "float64"


def test_other_passes_the_uri_untouched(data_node: Federation) -> None:
    """A database of type other reaches @data as its URI, exactly as configured."""
    assert _loaded(data_node, {"label": "ext"}) == {"uri": OTHER_URI}


# --- the unmodified vantage6-algorithm-tools 4.15.2 -----------------------------------------
def _v4_frame(fed: Federation, database: dict[str, Any]) -> Any:
    run, result = _run(fed, "frame", database, image=fed.extra["v6compat_image"])
    assert run["status"] == "completed", run["log"]
    return result["frame"]


def test_v4_data_loads_every_type_it_supports(data_node: Federation, sources: Sources) -> None:
    """v4's @data reads csv, parquet, excel, SQLite, PostgreSQL and SPARQL like the source."""
    engine = create_engine(sources.pg.owner_url)
    pg = pd.read_sql_query(SQL_QUERY, engine)
    engine.dispose()
    lite = create_engine(f"sqlite:///{sources.sqlite}")
    sqlite = pd.read_sql_query(SQL_QUERY, lite)
    lite.dispose()
    cases = [({"label": "default"}, pd.read_csv(sources.csv)),
             ({"label": "pq"}, pd.read_parquet(sources.parquet)),
             ({"label": "xl", "sheet_name": "visits"},
              pd.read_excel(sources.excel, sheet_name="visits")),
             ({"label": "lite", "query": SQL_QUERY}, sqlite),
             ({"label": "pg", "query": SQL_QUERY}, pg),
             ({"label": "rdf", "query": SPARQL_QUERY}, _rdflib_frame(sources.ttl))]
    for database, expected in cases:
        assert _v4_frame(data_node, database) == _split(expected)["frame"], database


def test_v4_algorithm_reads_an_other_uri_from_the_env(data_node: Federation) -> None:
    """A v4 algorithm finds an `other` database's URI in <LABEL>_DATABASE_URI, untouched."""
    run, result = _run(data_node, "database_uri", {"label": "ext"}, label="ext",
                       image=data_node.extra["v6compat_image"])
    assert run["status"] == "completed", run["log"]
    assert result == OTHER_URI


# --- credentials -----------------------------------------------------------------------------
def test_password_reaches_the_container_but_no_log(data_node: Federation,
                                                   sources: Sources, server: ServerProcess,
                                                   docker_client: Any) -> None:
    """The PostgreSQL password works in both algorithm kinds, yet appears in no node, server
    or run log, and in no container's command line or labels."""
    # Execute: v4 tools print the URI they load; both kinds query with the password
    assert _loaded(data_node, {"label": "pg2", "query": SQL_QUERY})["frame"]
    assert _v4_frame(data_node, {"label": "pg", "query": SQL_QUERY})
    task = data_node.create_task("sleep", args=[6], databases=[{"label": "pg"}])
    deadline = time.monotonic() + 60
    seen: list[Any] = []
    while time.monotonic() < deadline and len(seen) < 2:
        seen = [c for c in docker_client.containers.list(filters={
            "label": f"v6flow.node={data_node.nodes[0].name}"})
            if "-sidecar-spare-" not in c.name]  # the next job's sidecar, started ahead
        time.sleep(0.2)
    inspected = [c.attrs for c in seen]
    data_node.wait_for_runs(task["id"], timeout=120)
    # Assert
    secrets = {sources.pg.password, quote(sources.pg.password, safe="")}
    assert len(inspected) == 2, "expected the sidecar and the algorithm container"
    for attrs in inspected:
        shown = json.dumps([attrs["Path"], attrs["Args"], attrs["Config"]["Cmd"],
                            attrs["Config"]["Labels"], attrs["HostConfig"]["ExtraHosts"]])
        assert not any(s in shown for s in secrets), shown
    run_logs = "\n".join(str(r["log"]) for r in data_node.get("run", per_page=500)["data"])
    assert "127.100.0." in run_logs  # v4 printed the URI: the forward, without a password
    for name, text in [("node log", data_node.nodes[0].log_text()),
                       ("server log", server.log_text()), ("run logs", run_logs)]:
        assert not any(s in text for s in secrets), f"the password is in the {name}"


# --- isolation and failures ----------------------------------------------------------------
def test_container_still_has_only_loopback(data_node: Federation, probe_image: str) -> None:
    """With forwards in place the container has only `lo`, and the database server's own
    address is not reachable from it: only its forward is."""
    run, report = _run(data_node, "network", {"label": "pg"}, image=probe_image)
    assert report["interfaces"] == ["lo"], run["log"]
    run, probe = _run(data_node, "connect", {"label": "pg"}, image=probe_image, port=5432)
    assert probe["connected"] is False, run["log"]


def test_unknown_label_fails_naming_it(data_node: Federation) -> None:
    """A task asking a label the node lacks fails without a container, naming the label."""
    run, _ = _run(data_node, "loaded", {"label": "nosuch"})
    assert run["status"] == "failed"
    assert "'nosuch'" in run["log"] and "does not have" in run["log"]


@pytest.mark.parametrize(("label", "query"), [("deadsql", SQL_QUERY),
                                              ("deadrdf", SPARQL_QUERY)])
def test_unreachable_server_crashes_with_the_reason(data_node: Federation, label: str,
                                                   query: str) -> None:
    """A server the node cannot reach makes the run crash at once, the node's reason in
    the run log."""
    began = time.monotonic()
    run, _ = _run(data_node, "loaded", {"label": label, "query": query})
    assert run["status"] == "crashed"
    assert f"cannot reach the database server of {label}" in run["log"], run["log"]
    assert "DataLoadError" in run["log"]
    assert time.monotonic() - began < 60


# --- node.yaml ------------------------------------------------------------------------------
def _start_with(tmp_path: Path, database: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    config = {"server_url": "http://127.0.0.1:1/api", "api_key": "k",
              "task_dir": str(tmp_path), "databases": [database]}
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "v6flow.cli.main", "node", "start",
                           "--config", str(path)], capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.mark.parametrize(("database", "field"), [
    ({"label": "a", "type": "mongodb", "uri": "mongodb://h/x"}, "databases[0].type"),
    ({"label": "a", "type": "excel", "uri": "/no/such/file.xlsx"}, "databases[0].uri"),
    ({"label": "a", "type": "sql", "uri": "postgresql://u:hunter2@db:port/x"},
     "databases[0].uri"),
    ({"label": "a", "type": "sparql", "uri": "ftp://u:hunter2@db/x"}, "databases[0].uri"),
    ({"label": "a", "type": "csv", "uri": "/etc/hostname", "password": "hunter2"},
     "databases[0].password"),
])
def test_bad_database_config_exits_2_naming_the_field(tmp_path: Path, database: dict[str, Any],
                                                      field: str) -> None:
    """`v6flow node start` refuses a wrong database, naming the field, never the password."""
    proc = _start_with(tmp_path, database)
    assert proc.returncode == 2, proc.stderr
    assert field in proc.stderr
    assert "hunter2" not in proc.stdout + proc.stderr

