"""The official-format TDN checkpoint fixture in ../shared (see its README)."""
from pathlib import Path

import pytest
import torch

FIXTURE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "official_tdn_small"


@pytest.fixture(scope="session")
def official_fixture() -> dict:
    if not (FIXTURE_DIR / "checkpoint.pth.tar").is_file():
        pytest.skip(f"official TDN fixture not found at {FIXTURE_DIR}")
    ref = torch.load(FIXTURE_DIR / "reference.pt", weights_only=True)
    return {"checkpoint": FIXTURE_DIR / "checkpoint.pth.tar", "reference": ref}
