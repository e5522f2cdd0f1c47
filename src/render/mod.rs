//! Prints a plan: human, JSON, Markdown, dot.
