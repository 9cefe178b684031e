# kiln top-level Makefile: the README's commands.
#   make        install missing packages, build (release)
#   make test   build and run the whole test suite (release build + AddressSanitizer/UBSan build)
#   make demo   build and run the main job on MODEL and IMAGE
MODEL ?= ../shared/models/yolov8n.onnx
IMAGE ?= ../shared/images/dog.jpg
JOBS  ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
CMAKE_FLAGS ?=

.PHONY: all setup build test test-release test-asan demo clean

all: build

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test-release: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The robustness tests (malformed input, node-test sweep) again under AddressSanitizer + UBSan.
test-asan: setup
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DKILN_SANITIZE=ON -DKILN_ENABLE_CUDA=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) -L robust

test: test-release test-asan

# Detect objects in IMAGE (a photo or a folder) with MODEL (.onnx, built and cached on first use, or an
# engine file): prints the detections, draws them into demo/<name>, writes demo/<name>.json.
demo: build
	@mkdir -p demo
	@$(BUILD)/kiln detect $(MODEL) -i $(IMAGE) -o demo/$(notdir $(IMAGE:/=)) --json demo/$(basename $(notdir $(IMAGE:/=))).json
	@echo "demo: drawn result in demo/$(notdir $(IMAGE:/=)), detections in demo/$(basename $(notdir $(IMAGE:/=))).json"

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
