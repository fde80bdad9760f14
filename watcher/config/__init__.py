"""Configuration: watcher.yaml, rules.yaml and inventory.yaml as typed, validated objects."""

from watcher.config.inventory import Inventory, load_inventory
from watcher.config.rules import Rule, Rules, load_rules
from watcher.config.service import Config, ServiceConfig, load_config
from watcher.config.yamlload import ConfigError

__all__ = ["Config", "ConfigError", "Inventory", "Rule", "Rules", "ServiceConfig", "load_config",
           "load_inventory", "load_rules"]
