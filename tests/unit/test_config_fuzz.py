"""Whatever the command line, environment or config file says, petcd.config answers with a Config,
a UsageError or a ConfigError: never another exception (which the CLI would show as a traceback)."""

from __future__ import annotations

import contextlib

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from petcd.config import OPTIONS, ConfigError, UsageError, load

FLAG_NAMES = [option.name for option in OPTIONS] + ["config-file", "version", "bogus"]
VALUES = st.one_of(
    st.sampled_from(["", "0", "-1", "1h", "true", "http://127.0.0.1:2379", "http://127.0.0.1", "a=b",
                     "default=http://localhost:2380", "x=foo,y=", "http://[::1]:2379", "unix://h:1",
                     "http://h:99999", "1e3", "0x10", " 5", "existing", "revision"]),
    st.text(max_size=20),
)


def argument() -> st.SearchStrategy[list[str]]:
    flag = st.sampled_from(FLAG_NAMES)
    spelled = st.tuples(st.sampled_from(["-", "--"]), flag, st.sampled_from(["=", " "]), VALUES)
    return spelled.map(lambda t: [f"{t[0]}{t[1]}={t[3]}"] if t[2] == "=" else [f"{t[0]}{t[1]}", t[3]])


def acceptable(argv: list[str], environ: dict[str, str], files: dict[str, str]) -> None:
    try:
        loaded = load(argv, environ, read_file=lambda path: files[path] if path in files else _missing(path))
    except (UsageError, ConfigError):
        return
    if loaded.config is not None:
        with contextlib.suppress(ConfigError):
            loaded.config.verify_bootstrap()


def _missing(path: str) -> str:
    raise FileNotFoundError(2, "No such file or directory", path)


@settings(max_examples=400, deadline=None)
@given(st.lists(argument(), max_size=6).map(lambda parts: [a for part in parts for a in part]))
def test_any_command_line(argv: list[str]) -> None:
    acceptable(argv, {}, {})


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([o.env_name for o in OPTIONS] + ["ETCD_CONFIG_FILE", "ETCD_X"]),
                       VALUES, max_size=5))
def test_any_environment(environ: dict[str, str]) -> None:
    acceptable([], environ, {})


YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), VALUES),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*FLAG_NAMES, "client-transport-security", "peer-transport-security"]),
                       YAML_VALUES, max_size=6))
def test_any_config_file(document: dict[str, object]) -> None:
    acceptable(["--config-file", "/c.yml"], {}, {"/c.yml": yaml.safe_dump(document)})


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_config_file_text(text: str) -> None:
    acceptable(["--config-file", "/c.yml"], {}, {"/c.yml": text})
