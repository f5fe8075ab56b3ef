"""Which files the distribution carries; everything else is in pyproject.toml.

The checkout keeps the embeddable widget and the operator console at its top level
(``widget/``, ``operator_console/``), beside the package. A wheel has no place for
top-level folders, so both ship inside the package: ``package_dir`` maps them to
``chatserver/web/widget`` and ``chatserver/web/operator_console``, where
``chatserver.web.app`` looks first (then in the checkout). Every file in them ships,
subfolders included, and so does every ``*.toml`` in the package (the SLA and billing
defaults) and the server's gettext catalogs (``chatserver/i18n/locale/**/*.po``,
compiled in memory at run time). The sdist carries the same files at their checkout paths.

This needs setup.py only because ``[tool.setuptools]`` cannot add packages to those
``packages.find`` discovers. ``tests/test_packaging.py`` builds the sdist and the wheel,
installs the wheel into a fresh venv and serves from there.
"""

from setuptools import find_packages, setup

ASSETS = {
    "chatserver.web.widget": "widget",
    "chatserver.web.operator_console": "operator_console",
}

setup(
    packages=[*find_packages(include=["chatserver", "chatserver.*"]), *ASSETS],
    package_dir=ASSETS,
    package_data={
        "chatserver": ["**/*.toml", "i18n/locale/**/*.po", "i18n/locale/*.pot"],
        **{name: ["**/*"] for name in ASSETS},
    },
    # The widget's build tool (widget/node_modules, from `make widget`) does not ship;
    # its output, widget/dist/widget.min.js, does.
    exclude_package_data={"chatserver.web.widget": ["node_modules/**/*", "node_modules/*"]},
    # Only the files named above: MANIFEST.in/VCS lists play no part, and setuptools
    # does not mistake the console's js/ subfolders for packages left out.
    include_package_data=False,
)
