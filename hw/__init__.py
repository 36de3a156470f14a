"""The room's hardware adapters."""


def register_all() -> None:
    """Load every driver package: each of their modules registers its drivers by name."""
    import hw.lighting
    import hw.vitals  # noqa: F401  (imported for their registrations)
