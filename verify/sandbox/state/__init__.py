"""The sandbox's one shared state: records, the store and its mixins per resource family."""
