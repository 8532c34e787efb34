"""The study's dashboard: Flask, server-side SVG charts, no JavaScript library and no CDN."""
