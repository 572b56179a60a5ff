"""The ``triton`` backend: the two network stages served by a Triton Inference Server.

Every node of a fleet sends its encoder and head batches to one server over gRPC (KServe
v2, binary tensors), whose dynamic batcher merges the requests of all nodes. The models
are the ones ``run_stream.py export-triton`` writes (:mod:`engines.triton_repository`):
``lipforensics_encoder`` (``frames`` -> ``features``) and ``lipforensics_head``
(``features`` -> ``logits``), each config carrying the source checkpoint's SHA-256.

The client is ``tritonclient.grpc.aio`` (the ``triton`` extra). The scheduler calls a
backend synchronously from its inference thread, and ``scan`` from plain code, so the
backend owns one event loop on a thread of its own where its single client lives (the aio
client must stay on one loop); :meth:`TritonBackend.encode_frames` and
:meth:`TritonBackend.head` hand their requests to that loop and wait. Inputs larger than
the served ``max_batch_size`` go as several requests at once, which Triton batches again.

:meth:`TritonBackend.connect` checks, before any frame is read, that the server is live,
both models are ready with the expected names and shapes, and (given the weights) that they
were exported from those weights. A server that cannot be reached, or does not answer a
call in time, raises :class:`~errors.BackendUnavailable` (exit 2 at start; the live
scheduler drops the windows, says degraded and retries, see
:mod:`stream.health.backend`). After such a failure the next call opens a fresh connection
and checks the models again, so a server restarted with other models is not used.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engines import method
from errors import BackendUnavailable, LipForensicsError
from errors.text import redact

ENCODER_MODEL = "lipforensics_encoder"
HEAD_MODEL = "lipforensics_head"
#: the ``parameters`` key of both configs that holds the source checkpoint's SHA-256.
SHA256_PARAMETER = "source_sha256"
#: seconds one call may take by default (a batch, or one start-up check).
DEFAULT_TIMEOUT = 10.0
SCHEMES = {"grpc": False, "grpcs": True}


@dataclass(frozen=True, slots=True)
class TritonTarget:
    """Where the server is and how to talk to it.

    Attributes:
        address: ``HOST:PORT`` of its gRPC endpoint.
        tls: connect with TLS (``grpcs://``); ``ca``, ``cert``, ``key`` are PEM files: the
            roots to trust (default: the system's) and a client certificate (mutual TLS).
        headers: extra request headers, e.g. a proxy's authorisation.
        timeout: seconds one call may take before it counts as a failure.
    """

    address: str
    tls: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def parse(
        cls,
        url: str,
        *,
        ca: Path | None = None,
        cert: Path | None = None,
        key: Path | None = None,
        headers: tuple[str, ...] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> TritonTarget:
        """A target from ``HOST:PORT``, ``grpc://HOST:PORT`` or ``grpcs://HOST:PORT`` (TLS),
        and ``Name: value`` header strings.

        Raises:
            LipForensicsError: a malformed address or header, a missing PEM file, a
                client certificate without its key, a timeout that is not positive.
        """
        scheme, _, rest = url.rpartition("://")
        if scheme and scheme not in SCHEMES:
            raise LipForensicsError(
                "Triton URL must be HOST:PORT, grpc://HOST:PORT or grpcs://HOST:PORT, "
                f"got {redact(url)!r}"
            )
        if "@" in rest:
            raise LipForensicsError(
                f"a Triton URL carries no user or password, got {redact(url)!r}: give "
                "credentials as a header (--triton-header 'Authorization: ...')"
            )
        host, _, port = rest.rstrip("/").rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise LipForensicsError(f"Triton URL needs a host and a gRPC port, got {redact(url)!r}")
        for path in (ca, cert, key):
            if path is not None and not Path(path).is_file():
                raise LipForensicsError(f"Triton TLS file not found: {path}")
        if (cert is None) != (key is None):
            raise LipForensicsError("a Triton client certificate needs its key (and back)")
        if timeout <= 0:
            raise LipForensicsError(f"Triton timeout must be positive, got {timeout}")
        return cls(
            address=f"{host}:{port}",
            tls=SCHEMES.get(scheme, False) or any(p is not None for p in (ca, cert)),
            ca=ca,
            cert=cert,
            key=key,
            headers=tuple(_header(text) for text in headers),
            timeout=timeout,
        )

    @property
    def url(self) -> str:
        """The address as the user would write it (``grpcs://`` with TLS)."""
        return f"{'grpcs' if self.tls else 'grpc'}://{self.address}"


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or any(c.isspace() for c in name.strip()):
        raise LipForensicsError(f"a Triton header must be 'Name: value', got {text!r}")
    return name.strip().lower(), value.strip()


@dataclass(frozen=True, slots=True)
class ServedModels:
    """What the start-up check found on the server.

    Attributes:
        source_sha256: the checkpoint both models were exported from.
        feature_dim: the encoder's output width (the head's input width).
        max_batch: the smallest ``max_batch_size`` of the two configs.
    """

    source_sha256: str
    feature_dim: int
    max_batch: int


class TritonBackend:
    """Encoder and head calls to a Triton server (see the module doc). Build it with
    :meth:`connect`; :meth:`close` ends its loop thread.

    Attributes:
        target: the server.
        served: what the server serves (set by the start-up check).
        max_batch: rows per request (the served ``max_batch_size``).
    """

    name = "triton"

    def __init__(self, target: TritonTarget, expected_sha256: str | None = None) -> None:
        """Start the client's loop thread; nothing is sent until :meth:`connect` or a call."""
        self.target = target
        self.expected_sha256 = expected_sha256
        self.served: ServedModels | None = None
        self.max_batch: int | None = None
        self._grpc = _import_client()
        self._client: Any = None
        self._stale = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="triton-client", daemon=True
        )
        self._thread.start()

    @classmethod
    def connect(cls, target: TritonTarget, expected_sha256: str | None = None) -> TritonBackend:
        """A backend whose server passed the start-up check (see :meth:`check`).

        Raises:
            BackendUnavailable: the server cannot be reached or does not answer in time.
            LipForensicsError: a model is missing, not ready, shaped unlike ours, or
                exported from other weights than ``expected_sha256``.
        """
        backend = cls(target, expected_sha256)
        try:
            backend._call(backend._check())
        except BaseException:
            backend.close()
            raise
        return backend

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """(N, 1, 5, 88, 88) float32 -> (N, D) features, computed by the server."""
        return self._call(self._run(ENCODER_MODEL, "frames", "features", frames))

    def head(self, features: np.ndarray) -> np.ndarray:
        """(N, 25, D) float32 -> (N,) logits, computed by the server."""
        return self._call(self._run(HEAD_MODEL, "features", "logits", features)).reshape(-1)

    def statistics(self) -> dict[str, dict[str, Any]]:
        """Triton's inference statistics of both models (JSON form: int64 as strings)."""
        return self._call(self._statistics())

    def close(self) -> None:
        """Close the connection and stop the loop thread (idempotent)."""
        if self._loop.is_closed():
            return
        if self._client is not None:
            asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coroutine`` on the client's loop and wait for it (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _connected(self) -> Any:
        """The client; a fresh one, checked again, after a failure."""
        if self._stale:
            await self._client.close()
            self._client, self._stale = None, False
            try:
                await self._check()
            except BackendUnavailable:
                raise
            except LipForensicsError as error:  # back, but serving something else
                self._stale = True
                raise BackendUnavailable(str(error)) from None
        if self._client is None:
            target = self.target
            self._client = self._grpc.InferenceServerClient(
                target.address,
                ssl=target.tls,
                root_certificates=str(target.ca) if target.ca else None,
                private_key=str(target.key) if target.key else None,
                certificate_chain=str(target.cert) if target.cert else None,
            )
        return self._client

    async def _request(self, call: str, *args: Any, **kwargs: Any) -> Any:
        """One client call with the timeout and headers; failures of the server or the
        network become :class:`BackendUnavailable` (and the next call reconnects)."""
        from tritonclient.utils import InferenceServerException

        client = await self._connected()
        try:
            return await getattr(client, call)(
                *args,
                **kwargs,
                headers=dict(self.target.headers) or None,
                client_timeout=self.target.timeout,
            )
        except InferenceServerException as error:
            self._stale = True
            status = str(error.status() or "").removeprefix("StatusCode.")
            raise BackendUnavailable(
                f"Triton at {self.target.url}: {status or 'error'}: {error.message()}"
            ) from None

    async def _run(self, model: str, input_name: str, output_name: str, array: np.ndarray):
        """``array`` through ``model``, at most ``max_batch`` rows per request, all at once."""
        array = np.ascontiguousarray(array, np.float32)
        if self.served is None:
            await self._check()
        step = self.max_batch or len(array)
        parts = await asyncio.gather(
            *(
                self._infer(model, input_name, output_name, array[i : i + step])
                for i in range(0, len(array), step)
            )
        )
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)

    async def _infer(self, model: str, input_name: str, output_name: str, array: np.ndarray):
        grpc = self._grpc
        tensor = grpc.InferInput(input_name, list(array.shape), "FP32")
        tensor.set_data_from_numpy(array)
        wanted = [grpc.InferRequestedOutput(output_name)]
        result = await self._request("infer", model, [tensor], outputs=wanted)
        return result.as_numpy(output_name)

    async def _statistics(self) -> dict[str, dict[str, Any]]:
        found = {}
        for model in (ENCODER_MODEL, HEAD_MODEL):
            stats = await self._request("get_inference_statistics", model, as_json=True)
            found[model] = stats["model_stats"][0]
        return found

    async def _check(self) -> None:
        """The start-up check: live server, both models ready, our names and shapes, one
        source checkpoint (the expected one, if given)."""
        url = self.target.url
        await self._request("is_server_live")
        configs, shapes = {}, {}
        for model in (ENCODER_MODEL, HEAD_MODEL):
            if not await self._request("is_model_ready", model):
                raise LipForensicsError(
                    f"Triton at {url} has no ready model {model!r} (serve a repository "
                    "written by 'run_stream.py export-triton')"
                )
            meta = await self._request("get_model_metadata", model, as_json=True)
            shapes[model] = {
                tensor["name"]: [int(d) for d in tensor["shape"]]
                for tensor in meta.get("inputs", []) + meta.get("outputs", [])
            }
            configs[model] = (await self._request("get_model_config", model, as_json=True))[
                "config"
            ]
        self.served = _served_models(url, configs, shapes, self.expected_sha256)
        self.max_batch = self.served.max_batch


def _served_models(
    url: str,
    configs: dict[str, dict[str, Any]],
    shapes: dict[str, dict[str, list[int]]],
    expected_sha256: str | None,
) -> ServedModels:
    """Check the two models' metadata and configs; what they serve, or a one-line error."""
    size, frames = method.INPUT_SIZE, method.CLIP_FRAMES
    feature_dim = (shapes[ENCODER_MODEL].get("features") or [0])[-1]
    wanted = {
        ENCODER_MODEL: {"frames": [[-1, 1, 5, size, size]], "features": [[-1, feature_dim]]},
        HEAD_MODEL: {"features": [[-1, frames, feature_dim]], "logits": [[-1], [-1, 1]]},
    }
    for model, tensors in wanted.items():
        for name, accepted in tensors.items():
            if feature_dim < 1 or shapes[model].get(name) not in accepted:
                raise LipForensicsError(
                    f"Triton model {model!r} at {url} has tensors {shapes[model]}, expected "
                    f"{name} shaped {accepted[0]} (re-export with 'run_stream.py export-triton')"
                )
    digests = {
        model: config.get("parameters", {}).get(SHA256_PARAMETER, {}).get("string_value", "")
        for model, config in configs.items()
    }
    if not all(digests.values()) or len(set(digests.values())) != 1:
        raise LipForensicsError(
            f"Triton models at {url} do not name one source checkpoint ({SHA256_PARAMETER} "
            f"parameters: {digests}); re-export them together with 'run_stream.py export-triton'"
        )
    digest = digests[ENCODER_MODEL]
    if expected_sha256 is not None and digest != expected_sha256:
        raise LipForensicsError(
            f"Triton at {url} serves models exported from other weights (sha256 "
            f"{digest[:12]}..., --weights has {expected_sha256[:12]}...); export these weights "
            "with 'run_stream.py export-triton' or drop --weights"
        )
    batches = [int(config.get("max_batch_size", 0)) for config in configs.values()]
    if min(batches) < 1:
        raise LipForensicsError(f"Triton models at {url} must batch (max_batch_size >= 1)")
    return ServedModels(source_sha256=digest, feature_dim=feature_dim, max_batch=min(batches))


def _import_client() -> Any:
    """``tritonclient.grpc.aio``, or a one-line error saying how to install it."""
    try:
        import tritonclient.grpc.aio as grpc_aio
    except ImportError:
        raise LipForensicsError(
            "--backend triton needs the Triton client: pip install 'lipforensics-live[triton]'"
        ) from None
    return grpc_aio
