"""A small docs repo the retrieval tests build with git, ingested once into a real Chroma store.

The pages are written so that meaning alone is ambiguous: three pages talk about
local files and storage, one defines LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT; a
template talks about parent and child categories in everyday words while the
Taxonomy tag's parameter table (an included fragment) has the answer; a labeling
guide talks of turning and resizing shapes while one row of the Ellipse tag's
parameter table answers how to switch rotation off; the community and the
Enterprise "Project settings" pages say nearly the same about task order; an
older release note is about the Helm chart while the one a question names by
its number states the chart's version; a release note lists six unrelated
fixes, one of them about Redis, while a guide page is all about Redis; a template
compares two model answers side by side in plain words, while the Pairwise
tag's page (the tag it uses) speaks of objects and parameters.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

FILLER = (
    "Projects keep their tasks, annotations and settings together, and every change is saved as you work. "
)

PAGES = {
    "guide/storage.md": (
        "---\ntitle: Cloud and local storage\n---\n\n"
        "## Local files\n\nServe images from a directory on the Label Studio host. Set "
        "`LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT` to the parent folder of your data and enable "
        "`LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`, then add a local storage in the project settings.\n"
    ),
    "guide/import.md": (
        "---\ntitle: Import data\n---\n\n## Upload files\n\nDrag local files from your computer into the import "
        "dialog, or point a project at a folder of images on disk. Large uploads are better served from "
        "cloud storage buckets.\n"
    ),
    "guide/persistent_storage.md": (
        "---\ntitle: Persistent storage\n---\n\n## Media folders\n\nKeep uploaded media on a persistent "
        "volume so local files survive a restart of the container; mount the data folder on the host.\n"
    ),
    "guide/start.md": (
        "---\ntitle: Start Label Studio\n---\n\n## Command line arguments\n\n"
        "Run `label-studio start --no-browser` to start the server without opening a browser tab. "
        "Use `--port 8081` to listen on another port.\n"
    ),
    "guide/export.md": (
        "---\ntitle: Export annotations\n---\n\n## Image units\n\nRectangle coordinates are exported as "
        "percentages of the original_width and original_height of the image.\n\n## Long section\n\n"
        + FILLER * 12
        + "\n\nThe last paragraph of the long section mentions the snapshot_retention_days option.\n"
    ),
    "includes/tags/video.md": (
        "### Parameters\n\n| Param | Type | Default | Description |\n| --- | --- | --- | --- |\n"
        "| name | <code>string</code> |  | Name of the element |\n"
        "| [frameRate] | <code>number</code> | <code>24</code> | video frame rate per second; default is 24 |\n"
        "| [muted] | <code>boolean</code> | <code>false</code> | muted video |\n"
        "| [height] | <code>number</code> | <code>600</code> | height of the video player |\n"
        "| [timelineHeight] | <code>number</code> | <code>64</code> | height of the timeline with regions |\n"
    ),
    "tags/video.md": (
        "---\ntitle: Video\n---\n\nThe Video tag plays a video file.\n\n{% insertmd includes/tags/video.md %}\n"
    ),
    "tags/taxonomy.md": (
        "---\ntitle: Taxonomy\n---\n\nThe Taxonomy tag shows a tree of choices.\n\n"
        "{% insertmd includes/tags/taxonomy.md %}\n"
    ),
    "includes/tags/taxonomy.md": (
        "### Parameters\n\n| Param | Type | Default | Description |\n| --- | --- | --- | --- |\n"
        "| name | <code>string</code> |  | Name of the element |\n"
        "| [leafsOnly] | <code>boolean</code> | <code>false</code> | Allow annotators to select only leafs |\n"
        "| [showFullPath] | <code>boolean</code> | <code>false</code> | Whether to show the full path |\n"
        "| [maxUsages] | <code>number</code> |  | Maximum number of times a choice can be used per task |\n"
    ),
    "tags/ellipse.md": (
        "---\ntitle: Ellipse\n---\n\nUse the Ellipse tag to add an elliptical bounding box to an image.\n\n"
        "### Parameters\n\n| Param | Type | Default | Description |\n| --- | --- | --- | --- |\n"
        "| name | `string` |  | Name of the element |\n"
        "| toName | `string` |  | Name of the image to label |\n"
        "| [opacity] | `float` | `0.6` | Opacity of ellipses |\n"
        "| [canRotate] | `boolean` | `true` | Show or hide rotation control |\n"
        "| [fillColor] | `string` |  | Ellipse fill color in hexadecimal |\n"
        '| [strokeColor] | `string` | `"#f48a42"` | Stroke color in hexadecimal |\n'
        "| [strokeWidth] | `number` | `1` | Width of the stroke |\n"
        "| [smart] | `boolean` |  | Show smart tool for interactive pre-annotations |\n"
    ),
    "guide/labeling.md": (
        "---\ntitle: Label images\n---\n\n## Shapes\n\nDraw ellipses, rectangles and polygons on the image. "
        "Drag a shape's corner handles to resize it, or turn it around its centre as you adjust it. Undo a change with Ctrl+Z.\n"
    ),
    "templates/hierarchy.md": (
        "---\ntitle: Hierarchical classification\n---\n\n## Categories\n\nAnnotators choose a broad category, "
        "or a narrower one below it, when they classify a document. Clear instructions for each category "
        "keep people from choosing the wrong one.\n"
    ),
    **{
        f"tutorials/{name}.md": (
            f"---\ntitle: {name.upper()} backend\n---\n\n## Running with Docker\n\n"
            "Start the machine learning backend on `http://localhost:9090` with `docker compose up`, "
            "then connect it to a project in the model settings and validate the connection.\n"
        )
        for name in ("yolo", "ner", "sam")
    },
    "guide/project_settings.md": (
        "---\ntitle: Project settings\ntier: opensource\n---\n\n## Task sampling\n\nChoose how annotators "
        "get tasks: in the order of the Data Manager list, or in random order with Random sampling.\n"
    ),
    "guide/project_settings_lse.md": (
        "---\ntitle: Project settings\ntier: enterprise\n---\n\n## Task sampling\n\nChoose the order in which "
        "annotators get tasks: in the order of the Data Manager list, in random order with Random sampling, "
        "or by uncertainty, and whether tasks are distributed to annotators automatically or manually.\n"
    ),
    "release_notes/2.3.1.md": (
        "---\nhide_sidebar: true\n---\n\n## Label Studio Enterprise 2.3.1\n\n### New helm chart\n\n"
        "Which Helm chart version ships with this release: a new chart version for Kubernetes 1.22 or "
        "later. Check the chart version you run before you upgrade.\n"
    ),
    "release_notes/2.22.0.md": (
        "---\nhide_sidebar: true\n---\n\n## Label Studio Enterprise 2.22.0\n\nChart version: 1.9.6\n\n"
        "### New features\n\nPause an annotator from the Members dashboard.\n"
    ),
    "release_notes/2.26.1.md": (
        "---\nhide_sidebar: true\n---\n\n## Label Studio Enterprise 2.26.1\n\n### Bug fixes\n\n"
        "- Fixed an issue where task data appeared in notification emails.\n"
        "- Fixed an issue where Redis usernames were not supported in the wait-for-redis deploy script.\n"
        "- Fixed an issue where the project list loaded slowly for organizations with many workspaces.\n"
        "- Fixed an issue where exported CSV files were missing the annotator column.\n"
        "- Fixed an issue where keyboard shortcuts stopped working after a page reload.\n"
        "- Fixed an issue where long labels overflowed the side panel.\n"
    ),
    "guide/redis.md": (
        "---\ntitle: Set up Redis\n---\n\n## Redis connection\n\nThe deployment waits for Redis before it "
        "starts. Give Redis a username and password with `REDIS_URL=redis://user:password@host:6379`.\n"
    ),
    "tags/pairwise.md": (
        "---\ntitle: Pairwise\n---\n\nThe Pairwise tag compares two objects and selects one of them.\n\n"
        "### Parameters\n\n| Param | Type | Default | Description |\n| --- | --- | --- | --- |\n"
        "| name | <code>string</code> |  | Name of the element |\n"
        "| toName | <code>string</code> |  | Comma-separated names of the two elements to compare |\n"
        "| [leftClass] | <code>string</code> | <code>left</code> | CSS class of the left object |\n"
    ),
    "templates/side_by_side.md": (
        "---\ntitle: Side-by-side LLM responses\n---\n\n## About this template\n\nShow two model responses "
        "next to each other so reviewers choose the preferred response. The choice is saved with the task.\n"
    ),
    "guide/ml.md": (
        "---\ntitle: Machine learning backends\n---\n\n## Docker networking\n\nWhen Label Studio runs in "
        "Docker, `localhost` is the container itself: connect the backend at "
        "`http://host.docker.internal:9090` instead.\n"
    ),
}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=repo, check=True, capture_output=True
    )


@pytest.fixture(scope="session")
def docs_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DATA_DIR with the fixture repo ingested (once per test session: embedding is the slow part)."""
    root = tmp_path_factory.mktemp("retrieval")
    repo = root / "docs"
    for rel, text in PAGES.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "docs")
    from ingest import run_ingest
    from settings import get_settings

    data = root / "data"
    run_ingest(get_settings(data_dir=data), repo=str(repo), progress=False)
    return data


@pytest.fixture
def retriever_for(docs_data: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """`open_retriever` over the fixture store, with settings read from the environment like the app."""
    from qa.retrieval import open_retriever
    from settings import get_settings

    earlier: list[str] = []

    def make(**env: str):  # noqa: ANN202 - each call sees only its own settings, not an earlier call's
        for key in earlier:
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        earlier[:] = env
        return open_retriever(get_settings(data_dir=docs_data))

    return make
