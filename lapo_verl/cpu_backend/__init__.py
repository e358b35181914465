"""CPU backend for verl (laptops, tests, debugging; not for real training). Filled in by the CPU-backend work."""


def register_if_selected() -> None:
    """Register the CPU platform and rollout with verl when VERL_PLATFORM=cpu; otherwise do nothing."""
    return None
