"""A serial port read on its own thread: parse, report, reconnect when the port goes away.

Shared by every vitals driver. The reader owns one pyserial port, feeds what it reads to an
incremental parser, hands each parsed frame to the driver, and reports the device as ``ok`` or
``lost`` to the core (on transitions only). A USB adapter that is unplugged makes the read raise
or the open fail; the reader then retries with a bounded, doubling backoff until it comes back.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from controller.events import DeviceChanged
from controller.ports import Emit

log = logging.getLogger(__name__)

T = TypeVar("T")


class SerialLike(Protocol):
    """The part of ``serial.Serial`` the reader uses (a fake in tests)."""

    def read(self, size: int = 1) -> bytes:
        """Read up to ``size`` bytes, waiting at most the port's timeout."""
        ...

    def write(self, data: bytes) -> int | None:
        """Write ``data``."""
        ...

    def close(self) -> None:
        """Close the port."""
        ...


SerialFactory = Callable[[str, int, float], SerialLike]
"""Open ``port`` at ``baud`` with a read timeout; raise OSError/SerialException if it can't."""


class FrameParser(Protocol[T]):
    """An incremental parser: bytes in, complete frames out, never raises on garbage."""

    @property
    def bad_frames(self) -> int:
        """How many corrupt or unusable frames were dropped so far."""
        ...

    def feed(self, data: bytes) -> list[T]:
        """Consume ``data``; return the frames it completed."""
        ...

    def reset(self) -> None:
        """Forget any partial frame (the byte stream was interrupted)."""
        ...


def open_serial(port: str, baud: int, timeout: float) -> SerialLike:
    """Open a real pyserial port, 8N1, with a read timeout (the default factory)."""
    import serial  # lazy: the package imports on a machine without pyserial

    return serial.Serial(port=port, baudrate=baud, timeout=timeout, write_timeout=1.0)


def _port_errors() -> tuple[type[BaseException], ...]:
    try:
        import serial

        return (serial.SerialException, OSError, ValueError)
    except ImportError:  # pragma: no cover - pyserial is a dependency
        return (OSError, ValueError)


class SerialReader(Generic[T]):
    """Reads ``port`` on a daemon thread, feeding ``parser`` and passing frames to ``on_frame``.

    ``on_open``/``on_lost`` are called on the reader thread after the port opens or is lost;
    ``on_tick`` at least every ``read_timeout`` seconds while it runs (for driver watchdogs).
    ``wait(seconds)`` is how backoff pauses (default: the stop event's wait, so ``close()``
    cuts a pause short); it returns True when the reader should stop.
    """

    def __init__(
        self,
        port: str,
        baud: int,
        *,
        device: str,
        emit: Emit,
        parser: FrameParser[T],
        on_frame: Callable[[T], None],
        serial_factory: SerialFactory | None = None,
        on_open: Callable[[], None] | None = None,
        on_lost: Callable[[], None] | None = None,
        on_tick: Callable[[], None] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 5.0,
        read_timeout: float = 0.1,
        wait: Callable[[float], bool] | None = None,
        name: str | None = None,
    ) -> None:
        self.port = port
        self.baud = baud
        self.device = device
        self._emit = emit
        self.parser = parser
        self._on_frame = on_frame
        self._factory: SerialFactory = serial_factory or open_serial
        self._on_open = on_open
        self._on_lost = on_lost
        self._on_tick = on_tick
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.read_timeout = read_timeout
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait
        self._writes: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._serial: SerialLike | None = None
        self._status: str | None = None  # None until the first open attempt decides
        self._thread = threading.Thread(
            target=self._run, name=name or f"serial-{device}", daemon=True
        )
        self.reconnects = 0

    # --- public ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the port is open right now."""
        return self._status == "ok"

    @property
    def bad_frames(self) -> int:
        """Corrupt frames the parser dropped since start."""
        return self.parser.bad_frames

    def start(self) -> None:
        """Start the reader thread (returns at once)."""
        self._thread.start()

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the port; the reader thread writes it (never blocks the caller)."""
        self._writes.put(bytes(data))

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread and close the port; waits at most ``timeout`` seconds."""
        self._stop.set()
        ser = self._serial
        cancel = getattr(ser, "cancel_read", None)
        if cancel is not None:
            # Best effort to wake a read blocked in the port's timeout.
            with contextlib.suppress(Exception):
                cancel()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the reader thread is still running."""
        return self._thread.is_alive()

    # --- thread ---------------------------------------------------------------------------

    def _set_status(self, status: str, detail: str) -> None:
        if status != self._status:
            self._status = status
            self._emit(DeviceChanged(device=self.device, status=status, detail=detail))

    def _run(self) -> None:
        errors = _port_errors()
        delay = self.backoff_initial
        while not self._stop.is_set():
            try:
                ser = self._factory(self.port, self.baud, self.read_timeout)
            except errors as exc:
                self._set_status("lost", f"cannot open {self.port}: {exc}")
                if self._wait(delay):
                    break
                delay = min(delay * 2, self.backoff_max)
                continue
            self._serial = ser
            self.parser.reset()  # bytes from before a reconnect never complete a new frame
            self._drain_writes(discard=True)
            self._set_status("ok", f"opened {self.port}")
            delay = self.backoff_initial
            self._call(self._on_open)
            try:
                self._pump(ser)
            except errors as exc:
                log.warning("%s: %s lost: %s", self.device, self.port, exc)
                self._set_status("lost", f"{self.port}: {exc}")
                self._call(self._on_lost)
                self.reconnects += 1
            finally:
                self._serial = None
                with contextlib.suppress(Exception):  # the port may already be gone
                    ser.close()
            if not self._stop.is_set() and self._wait(delay):
                break

    def _pump(self, ser: SerialLike) -> None:
        while not self._stop.is_set():
            self._drain_writes(discard=False, ser=ser)
            # Read what is waiting (at least one byte, up to the timeout) so each frame is
            # handled, and timestamped, as soon as it arrives rather than in batches.
            waiting = getattr(ser, "in_waiting", 0)
            data = ser.read(min(waiting, 4096) if isinstance(waiting, int) and waiting else 1)
            if data:
                for frame in self.parser.feed(data):
                    self._deliver(frame)
            self._call(self._on_tick)

    def _deliver(self, frame: T) -> None:
        # Outside the port's error handling: a driver bug is not an unplugged cable.
        try:
            self._on_frame(frame)
        except Exception:
            log.exception("%s: handling a frame failed", self.device)

    def _drain_writes(self, *, discard: bool, ser: SerialLike | None = None) -> None:
        while True:
            try:
                data = self._writes.get_nowait()
            except queue.Empty:
                return
            if not discard and ser is not None:
                ser.write(data)

    def _call(self, fn: Callable[[], Any] | None) -> None:
        # A driver bug must not kill the reader: the port would silently stop being read.
        if fn is None:
            return
        try:
            fn()
        except Exception:
            log.exception("%s: driver callback failed", self.device)
