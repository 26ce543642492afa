"""The tutorial's code, kept as close to the text as a runnable test allows.

Used by tests/test_learner.py to check that dqnlab's updates are the
tutorial's (to float rounding), and by benchmarks/bench_train.py to time the
tutorial's agent beside dqnlab's. Changes from the printed code: Gymnasium's
5-value `step` (`done = terminated`, the same on unwrapped CartPole), the
network and optimizer passed in rather than built inside, and the batch's
draw passed in (`choices`) so a test can make both sides draw alike.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn


def naive_learn(network, optimizer, state, action, reward, state_, done):
    """`Agent.learn(state, action, reward, state_, done)` of the naive agent."""
    optimizer.zero_grad()
    state = torch.tensor(state).float().detach().unsqueeze(0)
    state_ = torch.tensor(state_).float().detach().unsqueeze(0)
    reward = torch.tensor(reward).float().detach()
    qValues = network(state)
    nextQValues = network(state_)
    predictedValueOfNow = qValues[0][action]  # interpret the past
    futureActionValue = nextQValues[0].max()  # interpret the future
    trueValueOfNow = reward + futureActionValue * (1 - done)  # td function
    loss = nn.MSELoss()(trueValueOfNow, predictedValueOfNow)
    loss.backward()
    optimizer.step()


def replay_learn(network, optimizer, memory, batchSize, choices=random.choices):
    """`Agent.learn(memory, batchSize)` of the replay agent."""
    if len(memory) < batchSize:
        return
    optimizer.zero_grad()
    randomMemories = choices(memory, k=batchSize)
    # np.stack of ragged rows needs an object array on NumPy >= 1.24
    memories = np.stack(np.array(randomMemories, dtype=object))
    states, actions, rewards, states_, dones = memories.T
    states, actions, rewards, states_, dones = (
        np.stack(states), np.stack(actions), np.stack(rewards), np.stack(states_), np.stack(dones)
    )
    states = torch.tensor(states).float()
    actions = torch.tensor(actions.astype(np.int64))  # the tutorial gets int64 "by luck"
    rewards = torch.tensor(rewards.astype(np.float64)).float()
    states_ = torch.tensor(states_).float()
    dones = torch.tensor(dones.astype(bool))
    qValues = network(states)
    nextQValues = network(states_)
    batchIndecies = np.arange(batchSize, dtype=np.int64)
    nowValues = qValues[batchIndecies, actions]  # interpret the past
    futureValues = torch.max(nextQValues, dim=1)[0]  # interpret the future
    futureValues[dones] = 0.0
    trueValuesOfNow = rewards + futureValues  # temporal difference
    loss = nn.MSELoss()(trueValuesOfNow, nowValues)
    loss.backward()
    optimizer.step()


def choose_action(network, observation):
    """`Agent.chooseAction`: greedy, then a random action 10% of the time."""
    state = torch.tensor(observation).float().detach().unsqueeze(0)
    qValues = network(state)
    action = torch.argmax(qValues).item()
    chanceOfAsparagus = random.randint(1, 10)
    if chanceOfAsparagus == 1:  # 10% chance
        action = random.randint(0, 1)
    return action


def run_agent(env, network, optimizer, samples: int, replay: bool, batch_size: int = 64) -> list[float]:
    """The main loop of the replay (or naive) agent, stopped after `samples` transitions.

    Returns the scores of the finished episodes.
    """
    memory, scores, numSamples = [], [], 0
    while numSamples < samples:
        done = False
        state, _ = env.reset()
        score = 0
        while not done and numSamples < samples:
            action = choose_action(network, state)
            state_, reward, done, _, _ = env.step(action)
            if replay:
                memory.append([state, action, reward, state_, done])
                replay_learn(network, optimizer, memory, batch_size)
            else:
                naive_learn(network, optimizer, state, action, reward, state_, done)
            state = state_
            numSamples += 1
            score += reward
        if done:
            scores.append(score)
    return scores
