"""Screenshot of the demo page (docs/img/serve.png), made by a real browser:
serve a model, draw a digit with the mouse (grey models) or upload an image
(colour models), wait for the answer, save the window.

    python -m demos.screenshot --model lenet [--tflite twin.tflite] [--image photo.jpg]
                               [--out docs/img/serve.png]

Needs selenium and Debian's chromium + chromium-driver."""
import argparse
import shutil
import sys
import threading

from . import models
from .server import make_server

# a "4" in canvas pixels (280x280): down stroke, then the open top-left and the bar
FOUR = [[(170, 235), (170, 140), (170, 45), (110, 120), (60, 170), (130, 170), (220, 170)]]


def browser(width=1000, height=820):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--hide-scrollbars"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                            options=opts)


def capture(model, name, out, image=None, strokes=FOUR, tflite=None):
    """Serve `model` (and its float LiteRT twin `tflite`, a path, if given),
    show one answer in the page, save a PNG to `out`. -> the label shown."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    httpd = make_server(model, name, port=0, tflite=tflite, quiet=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    driver = browser()
    try:
        driver.get(f"http://127.0.0.1:{httpd.server_address[1]}/")
        WebDriverWait(driver, 10).until(
            lambda d: d.execute_script("return document.body.dataset.ready") == "1")
        if image is not None:
            driver.find_element(By.ID, "file").send_keys(image)
        else:
            pad = driver.find_element(By.ID, "pad")
            for stroke in strokes:
                chain = ActionChains(driver).move_to_element_with_offset(
                    pad, stroke[0][0] - 140, stroke[0][1] - 140).click_and_hold()
                for x, y in stroke[1:]:
                    chain.move_to_element_with_offset(pad, x - 140, y - 140)
                chain.release().perform()
            driver.find_element(By.ID, "classify-drawing").click()
        WebDriverWait(driver, 10).until(
            lambda d: d.find_element(By.ID, "latency").text.endswith(" ms")
            or d.find_element(By.ID, "error").is_displayed())
        driver.save_screenshot(str(out))
        return driver.find_element(By.ID, "result-label").text
    finally:
        driver.quit()
        httpd.shutdown()
        httpd.server_close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="lenet", help="lenet, resnet or a .ebnn path")
    p.add_argument("--image", default=None, help="upload this image instead of drawing")
    p.add_argument("--tflite", default=None,
                   help="float .tflite twin shown side by side (needs ai-edge-litert)")
    p.add_argument("--out", default="docs/img/serve.png")
    args = p.parse_args(argv)
    model = models.load(args.model)
    label = capture(model, model.graph.name, args.out, args.image, tflite=args.tflite)
    print(f"{args.out}: page shows {label!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
