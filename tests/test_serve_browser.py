"""The demo page in a real browser: headless Chromium (Debian's chromium +
chromium-driver) driven by Selenium. Draw a digit with the mouse, upload a
photo, see the top-3 and the latency; upload a non-image and see the error.
Skipped with a message when Selenium or Chromium is missing."""
import contextlib
import math
import os
import re
import shutil
import threading

import demo_models
import numpy as np
import pytest
from PIL import Image

import edgebnn
from edgebnn_demos import server as srv

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed "
                                "(pip install selenium)")
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or not os.path.exists(CHROMEDRIVER),
    reason="headless Chromium needs Debian's chromium and chromium-driver "
           "(apt-get install chromium chromium-driver)")
DASH = "\u2013"


def new_browser():
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1000,800"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


@contextlib.contextmanager
def serving(model_path, tflite=None):
    """The demo server on a free port for the block -> its URL."""
    httpd = srv.make_server(edgebnn.load(model_path), "browser-test", port=0, tflite=tflite,
                            quiet=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    driver = new_browser()
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def digits_page(tmp_path_factory):
    with serving(demo_models.save_digit_model(tmp_path_factory.mktemp("m") / "d.ebnn")) as url:
        yield url


@pytest.fixture(scope="module")
def colours_page(tmp_path_factory):
    with serving(demo_models.save_colour_model(tmp_path_factory.mktemp("m") / "c.ebnn")) as url:
        yield url


def open_page(browser, url):
    browser.get(url)
    WebDriverWait(browser, 10).until(
        lambda d: d.execute_script("return document.body.dataset.ready") == "1")


def wait_result(browser):
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.ID, "result-label").text not in ("", DASH)
        or d.find_element(By.ID, "error").is_displayed())
    assert not browser.find_element(By.ID, "error").is_displayed(), \
        browser.find_element(By.ID, "error").text
    latency = browser.find_element(By.ID, "latency").text
    assert re.fullmatch(r"\d+\.\d\d ms", latency), latency
    top = [li.text.split("\n") for li in browser.find_elements(By.CSS_SELECTOR, "#top3 li")]
    return browser.find_element(By.ID, "result-label").text, float(latency.split()[0]), top


def draw(browser, strokes):
    """strokes: lists of (x, y) in canvas pixels (280x280, top-left origin)."""
    pad = browser.find_element(By.ID, "pad")
    for stroke in strokes:
        chain = ActionChains(browser)
        # offsets are from the element's centre
        chain.move_to_element_with_offset(pad, stroke[0][0] - 140, stroke[0][1] - 140)
        chain.click_and_hold()
        for x, y in stroke[1:]:
            chain.move_to_element_with_offset(pad, x - 140, y - 140)
        chain.release().perform()


def test_draw_a_digit_and_read_the_answer(browser, digits_page):
    open_page(browser, digits_page)
    assert browser.find_element(By.ID, "pad").is_displayed()
    assert not browser.find_element(By.ID, "tflite-result").is_displayed()
    assert "10 classes" in browser.find_element(By.ID, "model-info").text
    browser.find_element(By.ID, "classify-drawing").click()          # nothing drawn yet
    assert browser.find_element(By.ID, "error").text == "draw a digit first"
    draw(browser, [[(140, 50 + 10 * i) for i in range(19)]])          # one vertical stroke
    browser.find_element(By.ID, "classify-drawing").click()
    label, ms, top = wait_result(browser)
    assert label == "1" and ms > 0
    assert len(top) == 3 and top[0][0] == "1"
    # a zero: an upright ellipse in one stroke
    browser.find_element(By.ID, "clear").click()
    draw(browser, [[(140 + 55 * math.sin(a * math.pi / 6), 140 - 85 * math.cos(a * math.pi / 6))
                    for a in range(13)]])
    browser.find_element(By.ID, "classify-drawing").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "result-label").text != "1")
    label, _, _ = wait_result(browser)
    assert label == "0"


def test_upload_a_photo(browser, colours_page, tmp_path):
    open_page(browser, colours_page)
    assert not browser.find_element(By.ID, "pad").is_displayed()      # colour model: no pad
    img = np.zeros((300, 400, 3), np.uint8)
    img[..., 1] = 180
    img[100:200, 150:250] = (220, 20, 20)
    Image.fromarray(img).save(tmp_path / "photo.jpg", quality=90)
    browser.find_element(By.ID, "file").send_keys(str(tmp_path / "photo.jpg"))
    label, _, top = wait_result(browser)
    assert label == "green" and [t[0] for t in top] == ["green", "red", "blue"]
    assert browser.find_element(By.ID, "preview").is_displayed()


def test_upload_a_non_image_shows_the_error(browser, colours_page, tmp_path):
    open_page(browser, colours_page)
    (tmp_path / "notes.txt").write_text("certainly not a picture")
    browser.find_element(By.ID, "file").send_keys(str(tmp_path / "notes.txt"))
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "error").is_displayed())
    assert "not an image" in browser.find_element(By.ID, "error").text
    assert browser.find_element(By.ID, "result-label").text == DASH


def test_screenshot_script(tmp_path):
    from edgebnn_demos import screenshot
    model = edgebnn.load(demo_models.save_digit_model(tmp_path / "d.ebnn"))
    label = screenshot.capture(model, "screenshot-test", tmp_path / "serve.png")
    assert label == "4"                          # the drawn "4" (screenshot.FOUR)
    with Image.open(tmp_path / "serve.png") as im:
        assert im.format == "PNG" and im.size[0] >= 800 and im.size[1] >= 500
        assert np.unique(np.asarray(im.convert("L"))).size > 20      # a rendered page, not blank


def test_tflite_twin_shown_side_by_side(browser, tmp_path):
    pytest.importorskip("ai_edge_litert", reason="LiteRT (ai-edge-litert) not installed")
    tf = pytest.importorskip("tensorflow", reason="TensorFlow needed to make the .tflite twin")
    import keras
    k = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
                          keras.layers.Dense(3, use_bias=False, activation="softmax")])
    k.layers[-1].set_weights([np.eye(3, dtype=np.float32) * 10])
    (tmp_path / "c.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(k).convert())
    model_path = demo_models.save_colour_model(tmp_path / "c.ebnn")
    with serving(model_path, tflite=str(tmp_path / "c.tflite")) as url:
        open_page(browser, url)
        assert browser.find_element(By.ID, "tflite-result").is_displayed()
        img = np.zeros((64, 64, 3), np.uint8)
        img[..., 0] = 230
        Image.fromarray(img).save(tmp_path / "red.png")
        browser.find_element(By.ID, "file").send_keys(str(tmp_path / "red.png"))
        label, _, _ = wait_result(browser)
        WebDriverWait(browser, 10).until(
            lambda d: d.find_element(By.ID, "tflite-latency").text.endswith(" ms"))
        assert label == "red" and browser.find_element(By.ID, "tflite-label").text == "red"
        assert browser.find_element(By.ID, "tflite-prob").text == \
            browser.find_element(By.ID, "result-prob").text          # same float network
