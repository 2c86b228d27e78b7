"""`edgebnn camera`: classify camera frames continuously, printing the
prediction and frames per second on one terminal line.

Sources: the Pi camera through picamera2, else a USB webcam through OpenCV
(cv2). Each frame is centre-cropped to a square, then converted exactly as
the model's stored preprocessing says (Model.classify)."""
import sys
import time

import numpy as np

from . import models
from .models import DemoError

NO_CAMERA = ("no camera library: install picamera2 for the Pi camera "
             "(sudo apt install python3-picamera2) or OpenCV for a USB webcam "
             "(pip install opencv-python-headless)")


def center_square(frame):
    """uint8 [H, W, C] -> the largest centred square."""
    h, w = frame.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return frame[y:y + s, x:x + s]


class PiCamera:
    def __init__(self):
        from picamera2 import Picamera2
        self.cam = Picamera2()
        self.cam.configure(self.cam.create_video_configuration(
            main={"size": (320, 240), "format": "RGB888"}))
        self.cam.start()

    def read(self):
        # picamera2's "RGB888" is stored B, G, R in memory
        return self.cam.capture_array()[..., 2::-1]

    def close(self):
        self.cam.stop()


class OpenCVCamera:
    def __init__(self, device):
        import cv2
        self.cv2 = cv2
        self.cap = cv2.VideoCapture(device)
        if not self.cap.isOpened():
            raise DemoError(f"OpenCV cannot open camera {device} (is a webcam plugged in?)")

    def read(self):
        ok, frame = self.cap.read()
        if not ok:
            raise DemoError("the camera stopped delivering frames")
        return self.cv2.cvtColor(frame, self.cv2.COLOR_BGR2RGB)

    def close(self):
        self.cap.release()


def open_camera(device=0):
    """The first camera library that is installed; DemoError (exit 2) if none."""
    import importlib.util
    have_cv2 = importlib.util.find_spec("cv2") is not None
    if importlib.util.find_spec("picamera2") is not None:
        try:
            return PiCamera()
        except Exception as e:          # installed, but no Pi camera attached
            if not have_cv2:
                raise DemoError(f"picamera2 found no camera ({e})", code=2) from None
    if have_cv2:
        return OpenCVCamera(device)
    raise DemoError(NO_CAMERA, code=2)


def loop(model, camera, frames=None, out=None, clock=time.perf_counter):
    """Classify frames until `frames` are done (or Ctrl-C); one status line
    rewritten in place. -> number of frames classified."""
    out = out or sys.stdout
    done, start, rate = 0, clock(), 0.0
    window = []                         # times of the last frames, for a steady fps
    try:
        while frames is None or done < frames:
            frame = np.ascontiguousarray(center_square(camera.read()))
            t = clock()
            (label, p), = model.classify(frame, top_k=1)
            ms = (clock() - t) * 1e3
            done += 1
            window = (window + [clock()])[-30:]
            if len(window) > 1:
                rate = (len(window) - 1) / max(window[-1] - window[0], 1e-9)
            out.write(f"\r{label:<12} {p * 100:5.1f}%  model {ms:6.2f} ms  {rate:5.1f} fps ")
            out.flush()
    except KeyboardInterrupt:
        pass
    total = clock() - start
    out.write(f"\n{done} frames in {total:.1f} s ({done / max(total, 1e-9):.1f} fps overall)\n")
    return done


def run(args):
    model = models.load(args.model, args.threads)
    camera = open_camera(args.device)
    print(f"classifying camera frames with {model.graph.name} "
          f"({models.executor_note(model)}); Ctrl-C to stop", file=sys.stderr)
    try:
        loop(model, camera, args.frames)
    finally:
        camera.close()
    return 0
