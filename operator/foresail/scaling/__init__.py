"""PURE: metric snapshot -> forecast -> capacity -> scaling decision. Takes ``now``; never reads a clock."""
