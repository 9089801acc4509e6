# The two commands of the README: `make book` and `make test`. Both create the virtual environment if needed.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export OMP_NUM_THREADS ?= 1
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg

.PHONY: book test notebooks chapters clean-book

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

# Build the book from the committed, executed notebooks (no notebook is executed here).
book: $(STAMP)
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going
	@echo "book: _build/html/index.html"

# All tests: library tests and nbval over the chapter notebooks in the smoke profile.
test: $(STAMP)
	$(PY) -m pytest tests --nbval notebooks -p no:cacheprovider

# Re-execute every notebook in place in the smoke profile (the outputs nbval compares against).
notebooks: $(STAMP)
	for nb in notebooks/*.ipynb; do $(VENV)/bin/papermill "$$nb" "$$nb" -k python3 --cwd notebooks || exit 1; done

# Execute every chapter in the full profile into book/ (finished runs are reused; needs the real data; long).
chapters: $(STAMP)
	for nb in notebooks/*.ipynb; do $(VENV)/bin/oncorepro chapter run "$$nb" --profile full || exit 1; done

clean-book:
	rm -rf _build
