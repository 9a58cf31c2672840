"""Reward functions for verl's ``reward.custom_reward_function`` (see :mod:`verl_focal.rewards.math`)."""
