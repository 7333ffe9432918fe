"""Where the scaler's model comes from: a local folder or the MLflow registry alias.

Loading goes through `PPO_GNN.load` (``torch.load(weights_only=True)``, the SHA-256 recorded
in ``config.json``, the observation schema version); on top of it the scaler checks an
*externally* recorded hash (`ScalerConfig.model_sha256`, or the MLflow version tag
``weights_sha256``), so a model folder that was replaced as a whole is refused too. Every
failure becomes a `ModelUnavailable` with the fallback reason it implies (S1, S2, S3).

`ModelSource.poll` is called every tick: it (re)loads when the registry alias moved to
another version (`MlflowClient.get_model_version_by_alias`) or, for a local folder, when
its weights changed (their size and mtime, then their SHA-256), retries a failed fetch with
exponential backoff (S2), and a new version that fails to load leaves the current model in
place (hot reload keeps the old model).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gnnrl.config import ConfigError
from gnnrl.scaler.clock import Clock

log = logging.getLogger("gnnrl.scaler.model")

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[\w.-]+)$")
WEIGHTS_FILE = "weights.pt"
SHA_TAG = "weights_sha256"


class ModelUnavailable(Exception):
    """No usable model; `reason` is the fallback reason ("model_missing", "model_load",
    "schema")."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass
class LoadedModel:
    """A model ready to act, with where it came from (exported as `gnnrl_scaler_model`)."""

    policy: Any
    uri: str
    version: str
    sha256: str


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_model_dir(path: str | Path, expected_sha256: str = "", uri: str = "",
                   version: str = "local") -> LoadedModel:
    """Load a model folder (``weights.pt`` + ``config.json``) with every check.

    Raises:
        ModelUnavailable: reason "model_missing" (no such folder), "schema" (observation
            schema differs), "model_load" (hash mismatch, corrupt file, weights_only refusal,
            state_dict that does not fit).
    """
    from gnnrl.core.agents.ppo_gnn import PPO_GNN, ModelLoadError, ObservationSchemaError

    path = Path(path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelUnavailable("model_missing", f"no model at {path} ({WEIGHTS_FILE} missing)")
    digest = sha256_of(weights)
    if expected_sha256 and digest != expected_sha256.lower():
        raise ModelUnavailable("model_load", f"{weights}: sha256 {digest[:12]}... differs from "
                                             f"the recorded {expected_sha256[:12]}...")
    try:
        policy = PPO_GNN.load(path)
    except ObservationSchemaError as exc:
        raise ModelUnavailable("schema", str(exc)) from exc
    except ModelLoadError as exc:
        raise ModelUnavailable("model_load", str(exc)) from exc
    except Exception as exc:  # e.g. pickle.UnpicklingError from a weights_only refusal
        raise ModelUnavailable("model_load", f"cannot load model at {path}: {exc}") from exc
    return LoadedModel(policy, uri or str(path), version, digest)


def mlflow_client_env(token: str = "", token_file: str = "", ca_bundle: str = "",
                      verify: bool = True, timeout_s: float | None = None) -> dict[str, str]:
    """The MLflow client's environment variables for these connection settings
    (https://mlflow.org/docs/latest/python_api/mlflow.environment_variables.html:
    MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_SERVER_CERT_PATH, MLFLOW_TRACKING_INSECURE_TLS,
    MLFLOW_HTTP_REQUEST_TIMEOUT); the client reads them at each request.

    Raises:
        ModelUnavailable: `token_file` cannot be read (reason "model_missing").
    """
    env: dict[str, str] = {}
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as exc:
            raise ModelUnavailable("model_missing", f"mlflow.token_file {token_file}: "
                                   f"{exc.strerror or type(exc).__name__}") from exc
    if token:
        env["MLFLOW_TRACKING_TOKEN"] = token
    if ca_bundle:
        env["MLFLOW_TRACKING_SERVER_CERT_PATH"] = ca_bundle
    if not verify:
        env["MLFLOW_TRACKING_INSECURE_TLS"] = "true"
    if timeout_s is not None:
        env["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(max(1, round(timeout_s))))
    return env


class RegistryResolver:
    """`models:/NAME@ALIAS` -> (version, recorded sha256) and a local folder, via MLflow.

    Args:
        tracking_uri: the MLflow tracking/registry URI (None: MLFLOW_TRACKING_URI).
        env: MLflow client settings (`mlflow_client_env`) put into this process's
            environment, where the MLflow client reads them (the scaler's process talks to
            one MLflow only).
    """

    def __init__(self, tracking_uri: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        from mlflow.tracking import MlflowClient

        os.environ.update(env or {})

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._tmp = tempfile.TemporaryDirectory(prefix="gnnrl-model-")

    def version(self, name: str, alias: str) -> tuple[str, str]:
        """The version number behind the alias and its recorded hash tag ("" if none)."""
        mv = self.client.get_model_version_by_alias(name, alias)
        return str(mv.version), str((mv.tags or {}).get(SHA_TAG, ""))

    def download(self, name: str, version: str) -> Path:
        """Download the version and return its model folder (the pyfunc's `model_dir`
        artifact, located through the MLmodel file: MLflow stores it under the folder's
        original base name)."""
        import mlflow.artifacts
        import yaml

        from gnnrl.registry.pyfunc_model import MODEL_DIR_ARTIFACT

        dest = Path(self._tmp.name) / version
        local = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=str(dest),
            tracking_uri=self.tracking_uri))
        try:
            meta = yaml.safe_load((local / "MLmodel").read_text())
            rel = meta["flavors"]["python_function"]["artifacts"][MODEL_DIR_ARTIFACT]["path"]
        except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
            raise ModelUnavailable("model_load", f"models:/{name}/{version} is not a GNNRL "
                                                 f"pyfunc model: {exc}") from exc
        return local / rel


class ModelSource:
    """Keeps the current model and reloads it when its source changes.

    Args:
        uri: a local folder, or `models:/NAME@ALIAS`; "" = no model (HPA rule only).
        expected_sha256: recorded hash the weights must have ("" = none beyond the model's own).
        clock: the scaler's clock.
        poll_s: seconds between looks for a new version once a model is loaded (the
            registry alias, or a local folder's weights).
        backoff_s: (first, max) retry delay after a failed fetch, doubling in between.
        resolver_factory: builds the registry resolver (tests inject a fake MLflow server
            URI through it).

    Raises:
        ConfigError: `uri` is a registry model and MLflow is not installed (MLflow is
            imported only for a registry model; a local folder needs none of it).

    Attributes:
        current: the model in use (None: rule only). error: the last failure.
    """

    def __init__(self, uri: str, expected_sha256: str, clock: Clock, poll_s: float = 60.0,
                 backoff_s: tuple[float, float] = (5.0, 300.0),
                 resolver_factory: Callable[[], RegistryResolver] = RegistryResolver) -> None:
        self.uri, self.expected_sha256, self.clock = uri, expected_sha256, clock
        self.poll_s, self.backoff_s = poll_s, backoff_s
        if self.is_registry and importlib.util.find_spec("mlflow") is None:
            # a missing package is not an outage to wait out: say so at start, once
            raise ConfigError(f"model {uri}: a registry model needs the MLflow client, which "
                              "is not installed (pip install 'gnnrl[scaler]')")
        self.current: LoadedModel | None = None
        self.error: ModelUnavailable | None = None
        self._next_try = float("-inf")
        self._delay = backoff_s[0]
        self._failed_version: str | None = None
        self._resolver_factory = resolver_factory
        self._resolver: RegistryResolver | None = None
        self._stamp: tuple[tuple[int, int], ...] | None = None
        self._failed_stamp: tuple[tuple[int, int], ...] | None = None
        self.loads = 0

    @property
    def is_registry(self) -> bool:
        return bool(_REGISTRY_URI.match(self.uri))

    def poll(self) -> bool:
        """Load or reload when due. Returns True when `current` changed this call.

        Never raises: a failure is kept in `error` (its `reason` drives the fallback) and the
        previous model, if any, stays in use.
        """
        if not self.uri:
            self.error = ModelUnavailable("model_missing", "no model configured")
            return False
        now = self.clock.monotonic()
        if now < self._next_try:
            return False
        try:
            changed = self._poll_registry() if self.is_registry else self._poll_local()
        except ModelUnavailable as exc:
            self.error = exc
            self._next_try = now + self._delay
            self._delay = min(self._delay * 2, self.backoff_s[1])
            log.warning("model %s unavailable (%s): %s; keeping %s", self.uri, exc.reason, exc,
                        self.current.version if self.current else "the HPA rule")
            return False
        self.error = None
        self._delay = self.backoff_s[0]
        self._next_try = now + self.poll_s
        return changed

    def _poll_local(self) -> bool:
        """Load the folder when its weights changed since the last look: a (size, mtime)
        stamp of ``weights.pt`` and ``config.json`` first (a stat per tick), then the
        weights' SHA-256, so a touched but identical file is not reloaded. A new version that
        fails its checks (a corrupt or half-copied file) keeps the running model and is
        retried only when the files change again."""
        stamp = _stamp(Path(self.uri))
        if self.current is not None and stamp == self._stamp:
            return False
        if stamp == self._failed_stamp and stamp is not None:
            raise ModelUnavailable("model_load", f"{self.uri}: unchanged since it failed "
                                                 "to load")
        if (self.current is not None and stamp is not None and self._stamp is not None
                and stamp[1] == self._stamp[1]):  # only the weights' stamp moved
            try:
                same = sha256_of(Path(self.uri) / WEIGHTS_FILE) == self.current.sha256
            except OSError:
                same = False
            if same:
                self._stamp = stamp
                return False
        try:
            loaded = load_model_dir(self.uri, self.expected_sha256)
        except ModelUnavailable:
            self._failed_stamp = stamp
            raise
        if self.current is not None:
            log.info("model %s: weights changed (sha256 %s... -> %s...), reloaded", self.uri,
                     self.current.sha256[:12], loaded.sha256[:12])
        self.current, self._stamp, self._failed_stamp = loaded, stamp, None
        self.loads += 1
        return True

    def _poll_registry(self) -> bool:
        from mlflow.exceptions import MlflowException

        m = _REGISTRY_URI.match(self.uri)
        assert m is not None
        name, alias = m["name"], m["alias"]
        try:
            if self._resolver is None:
                self._resolver = self._resolver_factory()
            version, tagged = self._resolver.version(name, alias)
        except (MlflowException, OSError, ValueError) as exc:
            raise ModelUnavailable("model_missing", f"registry {self.uri}: {exc}") from exc
        except Exception as exc:  # requests/urllib3 errors of an unreachable server
            raise ModelUnavailable("model_missing", f"registry {self.uri}: {exc}") from exc
        if self.current is not None and self.current.version == version:
            return False
        if version == self._failed_version:
            raise ModelUnavailable("model_load", f"{name} version {version} failed to load")
        try:
            folder = self._resolver.download(name, version)
        except ModelUnavailable:
            self._failed_version = version
            raise
        except Exception as exc:
            raise ModelUnavailable("model_missing", f"download {name}/{version}: {exc}") from exc
        try:
            loaded = load_model_dir(folder, self.expected_sha256 or tagged,
                                    uri=f"models:/{name}/{version}", version=version)
        except ModelUnavailable:
            self._failed_version = version
            raise
        log.info("model %s: now version %s (was %s)", self.uri, version,
                 self.current.version if self.current else "none")
        self.current = loaded
        self.loads += 1
        return True


def _stamp(folder: Path) -> tuple[tuple[int, int], ...] | None:
    """(size, mtime in ns) of the weights and the config of a model folder; None if absent."""
    try:
        return tuple((st.st_size, st.st_mtime_ns) for st in
                     (os.stat(folder / WEIGHTS_FILE), os.stat(folder / "config.json")))
    except OSError:
        return None

