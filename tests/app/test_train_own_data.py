"""The Train page's "Your own images": a path typed on the server trains on that folder, with the
size and channels chosen, and a bad path is one error line, not a job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tests.app.test_train_page import press_train, train_page, widget
from vae.services.jobs import TrainingRequest


def test_a_typed_folder_is_what_trains(app_env: Path, fake_jobs: list[TrainingRequest], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8), "RGB").save(folder / f"{i}.png")
    at = train_page()
    widget(at, "text_input", "Folder or .npz path on the server").set_value(str(tmp_path / "nowhere"))
    press_train(at)
    assert fake_jobs == [] and any("does not exist" in e.value for e in at.main.error)

    widget(at, "text_input", "Folder or .npz path on the server").set_value(str(folder))
    widget(at, "number_input", "Image size (0 = auto)").set_value(8)
    widget(at, "text_input", "Save as").set_value("own-run").run()
    press_train(at)
    assert len(fake_jobs) == 1, [e.value for e in at.main.error]
    request = fake_jobs[0]
    assert request.dataset == f"folder,size=8:{folder}" and request.model_config.image_shape == (3, 8, 8)
