"""The opml API server: published pipeline endpoints and the schedules that trigger them."""
