/// The package's version (semantic versioning; see CHANGELOG.md), as `distill --version` prints it.
package let distillVersion = "0.4.0"
