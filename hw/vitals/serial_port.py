"""A serial port read on its own thread: parse, report, reconnect when the port goes away.

Shared by every vitals driver. The reader owns one pyserial port, feeds what it reads to an
incremental parser, hands each parsed frame to the driver, and reports the device as ``ok`` or
``lost`` to the core (on transitions only). A USB adapter that is unplugged makes the read raise
or the open fail; the reader then retries with a bounded, doubling backoff until it comes back.

Between bytes the thread sleeps in the port's read: until data comes, the driver's own next
deadline (``on_tick``) passes, or a write or ``close()`` cancels the read. It never polls: an
idle oximeter's reader costs nothing between its monitor's lines.
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

TICK_RETRY_S = 1.0
"""When a driver's ``on_tick`` fails, it is tried again this soon (its deadline is unknown)."""


class SerialLike(Protocol):
    """The part of ``serial.Serial`` the reader uses (a fake in tests).

    ``cancel_read`` (optional, as pyserial's on POSIX) makes a read in progress return at
    once; a port without it is read as it times out by itself.
    """

    timeout: float | None
    """How long a read waits for its first byte (``None``: until one comes)."""

    def read(self, size: int = 1) -> bytes:
        """Read up to ``size`` bytes, waiting at most the port's timeout."""
        ...

    def write(self, data: bytes) -> int | None:
        """Write ``data``."""
        ...

    def close(self) -> None:
        """Close the port."""
        ...


SerialFactory = Callable[[str, int, float | None], SerialLike]
"""Open ``port`` at ``baud`` with a read timeout (``None``: reads wait for data); raise
OSError/SerialException if it can't."""


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


def open_serial(port: str, baud: int, timeout: float | None) -> SerialLike:
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
    ``on_tick`` when the port opens and after every read, and returns the seconds until it
    must run again (a driver's watchdog deadline) or ``None`` when nothing is due: the next
    read waits no longer than that. ``wait(seconds)`` is how backoff pauses (default: the stop
    event's wait, so ``close()`` cuts a pause short); it returns True when the reader should
    stop.
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
        on_tick: Callable[[], float | None] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 5.0,
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
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait
        self._writes: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._serial: SerialLike | None = None
        # Held while the open port is cancelled or dropped, so a cancel never reaches a port
        # (or a reused file descriptor) that the reader has closed.
        self._port_lock = threading.Lock()
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
        self.wake()

    def wake(self) -> None:
        """Cut the read in progress short: the reader writes what is queued and asks the
        driver's ``on_tick`` for its deadline again (call after moving a deadline)."""
        with self._port_lock:
            cancel = getattr(self._serial, "cancel_read", None)
            if cancel is not None:
                with contextlib.suppress(Exception):  # best effort: the port may be going
                    cancel()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread and close the port; waits at most ``timeout`` seconds."""
        self._stop.set()
        self.wake()
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
                ser = self._factory(self.port, self.baud, None)
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
                with self._port_lock:
                    self._serial = None
                with contextlib.suppress(Exception):  # the port may already be gone
                    ser.close()
            if not self._stop.is_set() and self._wait(delay):
                break

    def _pump(self, ser: SerialLike) -> None:
        due = self._tick()
        while not self._stop.is_set():
            self._drain_writes(discard=False, ser=ser)
            if ser.timeout != due:  # pyserial reconfigures the port on each change
                ser.timeout = due
            # Read what is waiting (at least one byte, up to the deadline) so each frame is
            # handled, and timestamped, as soon as it arrives rather than in batches.
            waiting = getattr(ser, "in_waiting", 0)
            data = ser.read(min(waiting, 4096) if isinstance(waiting, int) and waiting else 1)
            if data:
                for frame in self.parser.feed(data):
                    self._deliver(frame)
            due = self._tick()

    def _tick(self) -> float | None:
        """Run the driver's ``on_tick``: the seconds the next read may wait (None: no limit)."""
        if self._on_tick is None:
            return None
        try:
            due = self._on_tick()
        except Exception:  # a driver bug must not kill the reader (nor stop its watchdog)
            log.exception("%s: driver callback failed", self.device)
            return TICK_RETRY_S
        return None if due is None else max(0.0, due)

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
