# hugerace build, test and packaging. `make run` and `make test` are the README's commands.

HOST_TARGET := x86_64-unknown-linux-gnu
TARGET ?= $(HOST_TARGET)
CARGO ?= cargo
BIN := target/$(TARGET)/release/hugerace

.PHONY: all build run test unit integration size clean

all: build

build:
	$(CARGO) build --release --target $(TARGET)
	@echo "built $(BIN)"

# The default job: both modes, once each, on the default hugepage size. Needs root when the
# hugepage pool must be raised (writing nr_hugepages); it puts the pool back afterwards.
run: build
	./$(BIN)

unit:
	$(CARGO) test --lib

integration: build
	HUGERACE_BIN=$(CURDIR)/$(BIN) $(CARGO) test --test '*'

test: unit integration

size: build
	@printf '%-34s %8s\n' target bytes
	@printf '%-34s %8s\n' $(TARGET) $$(stat -c %s $(BIN))

clean:
	$(CARGO) clean
