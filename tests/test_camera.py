"""`edgebnn camera`: the frame loop on a synthetic camera (frames drawn by
the test), the centre crop, and the clear message + exit 2 when neither
picamera2 nor OpenCV is installed. Real camera hardware is not tested here."""
import importlib.util
import io

import demo_models
import numpy as np
import pytest
from PIL import Image

import edgebnn
from demos import camera
from demos.models import DemoError
from edgebnn.cli import main


class FakeCamera:
    """640x480 frames: a paper digit in the middle, coloured bars at the
    sides that the centre crop must cut away."""

    def __init__(self, digits):
        self.digits, self.i, self.closed = list(digits), 0, False

    def read(self):
        d = self.digits[self.i % len(self.digits)]
        self.i += 1
        ink = demo_models.draw_digit(d, np.random.default_rng(d))
        sq = np.asarray(Image.fromarray(ink).resize((480, 480), Image.BICUBIC))
        frame = np.zeros((480, 640, 3), np.uint8)
        frame[:, :80] = (255, 0, 0)
        frame[:, 560:] = (0, 255, 0)
        frame[:, 80:560] = sq[..., None]
        return frame

    def close(self):
        self.closed = True


def test_center_square():
    f = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    assert np.array_equal(camera.center_square(f), f[:, 1:5])
    assert camera.center_square(f.transpose(1, 0, 2)).shape == (4, 4, 3)


def test_loop_classifies_every_frame_and_reports_fps(tmp_path):
    model = edgebnn.load(demo_models.save_digit_model(tmp_path / "d.ebnn"))
    cam = FakeCamera([3, 7, 5])
    out = io.StringIO()
    ticks = iter(np.arange(0, 1000, 0.01))          # a steady 100 Hz clock
    assert camera.loop(model, cam, frames=6, out=out, clock=lambda: float(next(ticks))) == 6
    text = out.getvalue()
    lines = [ln for ln in text.split("\r") if ln.strip()]
    assert [ln.split()[0] for ln in lines[:6]] == ["3", "7", "5", "3", "7", "5"]
    for ln in lines[1:6]:
        assert "fps" in ln and "ms" in ln
    assert "6 frames in" in text and "fps overall" in text
    # the same crop through the public API gives the same label
    frame = camera.center_square(FakeCamera([7]).read())
    assert model.classify(np.ascontiguousarray(frame), top_k=1)[0][0] == "7"
    # the crop cut the coloured side bars away: only grey pixels are left
    assert frame.shape == (480, 480, 3) and np.array_equal(frame[..., 0], frame[..., 1])


def test_no_camera_library_is_a_clear_error(monkeypatch, tmp_path, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("cv2", "picamera2") else real(name, *a))
    with pytest.raises(DemoError) as e:
        camera.open_camera()
    assert e.value.code == 2
    model = demo_models.save_digit_model(tmp_path / "d.ebnn")
    assert main(["camera", "--model", model]) == 2
    err = capsys.readouterr().err
    assert "picamera2" in err and "opencv-python-headless" in err


def test_camera_with_opencv_but_no_device(tmp_path, capsys):
    pytest.importorskip("cv2", reason="OpenCV not installed")
    model = demo_models.save_digit_model(tmp_path / "d.ebnn")
    code = main(["camera", "--model", model, "--device", "97", "--frames", "1"])
    assert code == 1 and "cannot open camera 97" in capsys.readouterr().err


def test_opencv_source_on_a_video_file(tmp_path):
    """The OpenCV path end to end (BGR -> RGB included), fed from a video
    file written by the test instead of a webcam."""
    cv2 = pytest.importorskip("cv2", reason="OpenCV not installed")
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    assert writer.isOpened()
    fake = FakeCamera([1, 4])
    for _ in range(4):
        writer.write(cv2.cvtColor(fake.read(), cv2.COLOR_RGB2BGR))
    writer.release()
    cam = camera.OpenCVCamera(path)
    first = cam.read()
    assert first.shape == (480, 640, 3)
    assert first[240, 20, 0] > 200 and first[240, 20, 2] < 60      # the red bar is red again
    cam.close()
    model = edgebnn.load(demo_models.save_digit_model(tmp_path / "d.ebnn"))
    out = io.StringIO()
    cam = camera.OpenCVCamera(path)
    assert camera.loop(model, cam, frames=4, out=out) == 4
    cam.close()
    labels = [ln.split()[0] for ln in out.getvalue().split("\r") if ln.strip()][:4]
    assert labels == ["1", "4", "1", "4"]
