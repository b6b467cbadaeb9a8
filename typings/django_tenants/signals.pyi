from django.dispatch import Signal

post_schema_sync: Signal
schema_needs_to_be_sync: Signal
schema_migrated: Signal
schema_pre_migration: Signal
